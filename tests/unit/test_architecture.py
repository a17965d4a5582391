"""The dependency rules of DESIGN.md, checked by walking the imports."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = (
    "app",
    "settings",
    "schema",
    "resolvers",
    "dataloaders",
    "domain",
    "persistence",
    "integrations",
)


def imports_of(package: str) -> dict[Path, set[str]]:
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[path] = names
    return found


def test_domain_imports_only_the_standard_library_and_itself() -> None:
    allowed = set(sys.stdlib_module_names) | {"domain", "__future__"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(names - allowed)
        for path, names in imports_of("domain").items()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_layer_imports_the_composition_root_and_arrows_point_inward() -> None:
    forbidden = {
        "domain": {"schema", "resolvers", "dataloaders", "persistence", "integrations", "app"},
        "persistence": {"schema", "resolvers", "dataloaders", "app"},
        "dataloaders": {"schema", "resolvers", "app"},
        "schema": {"resolvers", "app"},
        "resolvers": {"app", "sqlalchemy", "redis"},
        "integrations": {"schema", "resolvers", "dataloaders", "persistence", "app"},
        # Metrics and logs are a leaf every layer but domain/ may use.
        "observability": {
            "schema",
            "resolvers",
            "dataloaders",
            "domain",
            "persistence",
            "integrations",
            "app",
        },
    }
    offenders = {}
    for layer, banned in forbidden.items():
        for path, names in imports_of(layer).items():
            if names & banned:
                offenders[str(path.relative_to(ROOT))] = sorted(names & banned)
    assert offenders == {}


def module_imports_of(package: str) -> dict[Path, set[str]]:
    """Like `imports_of`, with full dotted module names."""
    found: dict[Path, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[path] = names
    return found


def test_only_the_composition_root_wires_the_http_edge() -> None:
    # resolvers/http is the outermost ring: root fields, extensions, schema types,
    # loaders and everything below never reach out to it.
    offenders = {}
    for package in ("schema", "resolvers", "dataloaders", "domain", "persistence", "integrations"):
        for path, names in module_imports_of(package).items():
            if path.is_relative_to(ROOT / "resolvers" / "http"):
                continue
            edge = sorted(
                n for n in names if n == "resolvers.http" or n.startswith("resolvers.http.")
            )
            if edge:
                offenders[str(path.relative_to(ROOT))] = edge
    assert offenders == {}


def test_the_folders_hold_what_the_layout_says() -> None:
    # No module squats at the top of resolvers/ or persistence/ that belongs in a room.
    resolvers = {p.stem for p in (ROOT / "resolvers").glob("*.py")}
    assert resolvers == {
        "__init__",
        "schema",
        "addresses",
        "catalog",
        "catalog_admin",
        "carts",
        "checkout",
        "customers",
        "account_changes",
        "reviews",
        "search",
        "shipping_admin",
        "gift_cards",
        "discounts",
        "refunds",
        "webhooks",  # the partner webhook delivery log
        "subscriptions",
    }
    persistence = {p.stem for p in (ROOT / "persistence").glob("*.py")}
    assert persistence <= {
        "__init__",
        "db",
        "read_router",  # the replica's probe and routing, beside the engines it routes
        "driver_reads",  # fixed-shape reads on asyncpg itself, beside the engines they use
        "tables",
        "migrate",
        "pii",
        "pii_rotation",
        "seed",
        "cursor_keys",
    }


def state_uses_in(paths: list[Path]) -> dict[str, list[str]]:
    """Every use of Starlette's `app.state` or `request.state` in these modules, as
    `file: [line, ...]`."""
    found: dict[str, list[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Attribute) and node.attr == "state"):
                continue
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name in {"app", "request"} or isinstance(owner, ast.Subscript):
                found.setdefault(str(path.relative_to(ROOT)), []).append(str(node.lineno))
    return found


def test_requests_share_one_typed_state_and_the_container_is_handed_out() -> None:
    # What one part of a request tells another goes through schema.request_state's
    # RequestState, never ad-hoc `request.state` attributes; and what needs the container
    # (the view, middleware, webhooks, /readyz, the tests' AppClient) is handed the
    # RunningContainer create_app fills, never `app.state.container`.
    paths = [ROOT / "app.py", ROOT / "commands.py", *(ROOT / "tests").glob("*.py")]
    for package in LAYERS[2:]:
        paths.extend((ROOT / package).rglob("*.py"))
    assert state_uses_in(paths) == {}


def test_only_the_command_line_imports_the_composition_root() -> None:
    # app.py wires everything, so nothing it wires may import it; commands.py is the one
    # entry point that runs on top of it (tests build apps through it too).
    offenders = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "tests", "var"} or "migrations" in relative.parts:
            continue
        if relative == Path("commands.py"):
            continue
        tree = ast.parse(path.read_text())
        names = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
        }
        if "app" in names:
            offenders[str(relative)] = "app"
    assert offenders == {}
