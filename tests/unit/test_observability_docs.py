"""The dashboard and the alerts read metrics the server exports, under these names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\bcommerce_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total")


def exported() -> set[str]:
    """The metric families a scrape shows (`_created` series are prometheus-client's)."""
    metrics = Metrics()
    families = text_string_to_metric_families(generate_latest(metrics.registry).decode())
    return {f.name for f in families if not f.name.endswith("_created")}


def family_of(name: str, known: set[str]) -> str | None:
    if name in known:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return None


def test_every_metric_the_dashboard_and_the_alerts_use_is_exported() -> None:
    known = exported()
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    alerts = (DOCS / "operations.md").read_text()

    used = {name for text in [*expressions, alerts] for name in NAME.findall(text)}
    assert {name for name in used if family_of(name, known) is None} == set()
    # Every family is on the dashboard, so nothing exported goes unseen.
    on_dashboard = {family_of(n, known) for e in expressions for n in NAME.findall(e)}
    assert on_dashboard == known


def test_the_dashboard_is_importable() -> None:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert dashboard["uid"] and dashboard["__inputs"][0]["type"] == "datasource"
    assert all(p["targets"] and p["datasource"]["uid"] == "${DS_PROMETHEUS}" for p in panels)
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
