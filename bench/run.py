"""Benchmark the GraphQL commerce API: listing/product screens, carts and checkout under wrk load.

For every worker count it starts `uvicorn app:app` against a seeded PostgreSQL database
and a Redis cache, records SQL statements per request from the `X-SQL-Statements`
header for a cold (just flushed) and a warm cache, then drives each scenario with wrk and
reports throughput, latency percentiles, server CPU per request and errors. The cart
scenarios first create guest carts through the API (carts live in Redis, so this happens
after every server start) and keep them across the cache flushes. The checkout scenarios
send every (cart, idempotency key) body at most once, so they create a fresh cart for
every checkout, and verify the flash sale's stock and orders in PostgreSQL afterwards.

Usage: `.venv/bin/python bench/run.py --help` (or `make bench`). See bench/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # `python bench/run.py`: import the harness as the package `bench` from the
    # project root (the script's own folder would shadow names such as `wrk`).
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import asyncio
import json
import signal
from collections.abc import Sequence
from dataclasses import asdict
from types import FrameType

import httpx

from bench.checkout import CheckoutRun, checkout_scenarios
from bench.config import (
    CART_SCENARIOS,
    CHECKOUT_POOL_MARGIN,
    CHECKOUT_SCENARIOS,
    FLASH_POOL_MARGIN,
    HOST,
    LISTING_SCRIPT,
    LISTING_VARIABLES,
    MIGRATE_TIMEOUT_S,
    PRODUCT_SCRIPT,
    QUERIES_DIR,
    REPO_ROOT,
    RESULTS_DIR,
    SCENARIOS,
    SEED_TIMEOUT_S,
    WARM_SAMPLES,
    BenchError,
    log,
)
from bench.cpu import cpu_delta_ms, cpu_snapshot
from bench.database import (
    ensure_database,
    fetch_counts,
    fetch_slugs,
    flush_cache,
    require_loopback,
    vacuum_analyze,
)
from bench.graphql_client import graphql_request, http_client
from bench.report import RunResult, fmt, render_report
from bench.scenarios import (
    Queries,
    Scenario,
    cart_scenarios,
    json_body,
    render_listing_script,
    render_product_script,
    search_scenario,
    warm_pass,
)
from bench.server import Server, ensure_port_free, run_app_command, running_server
from bench.wrk import run_wrk, write_if_changed

# --------------------------------------------------------------------------- orchestration


def prepare_database(args: argparse.Namespace) -> dict[str, int | None]:
    asyncio.run(ensure_database(args.database_url, args.fresh))
    log("running `app.py migrate`")
    run_app_command(args, ["migrate"], MIGRATE_TIMEOUT_S, capture=True)
    counts = asyncio.run(fetch_counts(args.database_url))
    products = counts["products"]
    if products is None:
        raise BenchError("`app.py migrate` succeeded but there is no products table")
    if products == 0:
        log(f"seeding {args.products} products (`app.py seed --products {args.products}`)")
        run_app_command(
            args, ["seed", "--products", str(args.products)], SEED_TIMEOUT_S, capture=False
        )
        log("VACUUM (ANALYZE) after seeding")
        asyncio.run(vacuum_analyze(args.database_url))
        counts = asyncio.run(fetch_counts(args.database_url))
    elif products != args.products:
        log(
            f"note: the database already holds {products} products (asked for {args.products});"
            " using what is there (pass --fresh to reseed)"
        )
    return counts


def measure(
    args: argparse.Namespace,
    workers: int,
    names: Sequence[str],
    static: dict[str, Scenario],
    queries: Queries,
) -> tuple[list[RunResult], str | None]:
    url = f"http://{HOST}:{args.port}/graphql"
    flush_cache(args.redis_url)
    log(f"starting uvicorn with {workers} worker(s) on port {args.port}")
    results: list[RunResult] = []
    cart_note: str | None = None
    checkout_runs: dict[str, CheckoutRun] = {}
    with running_server(args, workers) as server, http_client() as client:
        try:
            available = dict(static)
            if CART_SCENARIOS & set(names):
                carts, cart_note = cart_scenarios(
                    client, url, names, queries, carts=args.carts, threads=args.threads
                )
                available.update(carts)
            if CHECKOUT_SCENARIOS & set(names):
                checkout_runs = checkout_scenarios(client, url, names, queries, args, workers)
                for name, run in checkout_runs.items():
                    available[name] = run.setup()
            scenarios = [available[name] for name in names]
            keep_carts = bool((CART_SCENARIOS | CHECKOUT_SCENARIOS) & set(names))
            cold: dict[str, int | None] = {}
            for scenario in scenarios:
                flush_cache(args.redis_url, keep_carts=keep_carts)
                cold[scenario.name] = graphql_request(
                    client, url, scenario.name, scenario.cold_probe, scenario.probe_check
                )
            if any(value is None for value in cold.values()):
                log("warning: no X-SQL-Statements header (is EXPOSE_STATEMENT_COUNT honoured?)")
            for scenario in scenarios:
                checkout = checkout_runs.get(scenario.name)
                result = measure_scenario(args, workers, server, client, url, scenario, checkout)
                result.sql_cold = cold[scenario.name]
                results.append(result)
        finally:
            for run in checkout_runs.values():
                run.guard.restore()  # after a failure; a no-op once a run put its stock back
    return results, cart_note


def measure_scenario(
    args: argparse.Namespace,
    workers: int,
    server: Server,
    client: httpx.Client,
    url: str,
    scenario: Scenario,
    checkout: CheckoutRun | None,
) -> RunResult:
    log(f"{scenario.name}, {workers} worker(s): warm-up")
    warm_pass(client, url, scenario)
    warmup, _ = run_wrk(
        scenario.warmup_script or scenario.script,
        url,
        threads=args.threads,
        connections=args.connections,
        duration_s=args.warmup,
    )
    server.check_alive()
    warm = [
        graphql_request(client, url, scenario.name, body, scenario.probe_check)
        for body in scenario.probes[:WARM_SAMPLES]
    ]
    if checkout is not None:
        checkout.before_run(warmup)
    log(f"{scenario.name}, {workers} worker(s): wrk for {args.duration}s")
    before = cpu_snapshot(server.process.pid)
    wrk, output = run_wrk(
        scenario.script,
        url,
        threads=args.threads,
        connections=args.connections,
        duration_s=args.duration,
    )
    after = cpu_snapshot(server.process.pid)
    server.check_alive()
    (RESULTS_DIR / f"wrk-{scenario.name}-w{workers}.txt").write_text(output)
    if wrk.requests is None or wrk.rps is None:
        raise BenchError(f"could not parse wrk output:\n{output}")
    if checkout is not None:
        checkout.after_run(wrk)
    result = RunResult(
        scenario=scenario.name,
        workers=workers,
        wrk=wrk,
        sql_cold=None,
        sql_warm=warm,
        server_cpu_ms=cpu_delta_ms(before.server, after.server),
        postgres_cpu_ms=cpu_delta_ms(before.postgres, after.postgres),
        redis_cpu_ms=cpu_delta_ms(before.redis, after.redis),
        server_pids_changed=set(before.server) != set(after.server),
        checkout=None if checkout is None else checkout.stats,
    )
    if wrk.fallback:
        log(
            f"warning: {scenario.name}: the run pool ran out; {wrk.fallback} fallback requests"
            " (left out of checkouts/s; in the latency percentiles)"
        )
    log(
        f"{scenario.name}, {workers} worker(s): {fmt(result.rps)} req/s, "
        f"p99 {fmt(wrk.p99_ms, 2)} ms, errors {result.error_summary()}"
    )
    return result


def parse_workers(text: str) -> list[int]:
    try:
        workers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text}") from exc
    if not workers or any(count < 1 for count in workers):
        raise argparse.ArgumentTypeError("worker counts must be >= 1")
    return workers


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--products", type=positive_int, default=10_000, help="products to seed")
    parser.add_argument("--duration", type=positive_int, default=20, help="seconds per wrk run")
    parser.add_argument("--warmup", type=positive_int, default=3, help="seconds of wrk warm-up")
    parser.add_argument("--connections", type=positive_int, default=16, help="wrk connections")
    parser.add_argument("--threads", type=positive_int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", type=parse_workers, default="1,2", help="uvicorn worker counts, e.g. 1,2"
    )
    parser.add_argument("--port", type=positive_int, default=8700, help="server port on 127.0.0.1")
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/commerce_bench"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database")
    parser.add_argument(
        "--slugs", type=positive_int, default=200, help="active product slugs to rotate over"
    )
    parser.add_argument(
        "--carts",
        type=positive_int,
        default=200,
        help="guest carts to create for each cart scenario (after every server start)",
    )
    parser.add_argument(
        "--checkout-carts",
        type=positive_int,
        default=4000,
        help="checkout: minimum run pool (one cart per checkout); more if the warm-up's"
        f" rate x {CHECKOUT_POOL_MARGIN:g} x --duration is larger",
    )
    parser.add_argument(
        "--discount-code",
        default=None,
        help="checkout: enter this code on every cart (the seed's WELCOME10: 10%% off the"
        " order), to measure what pricing costs a checkout",
    )
    parser.add_argument(
        "--flash-carts",
        type=positive_int,
        default=3000,
        help="checkout_flash_sale: minimum run pool (buyers); more if the warm-up's"
        f" rate x {FLASH_POOL_MARGIN:g} x --duration is larger",
    )
    parser.add_argument(
        "--flash-stock",
        type=positive_int,
        default=500,
        help="checkout_flash_sale: units of the hot variant on sale",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--check-targets", action="store_true", help="exit 1 when a target is missed"
    )
    parser.add_argument(
        "--app-dir", type=Path, default=REPO_ROOT, help="server checkout holding app.py"
    )
    parser.add_argument(
        "--write-scripts",
        action="store_true",
        help="only (re)generate bench/results/listing.lua from the query, then exit",
    )
    args = parser.parse_args(argv)
    args.app_dir = args.app_dir.resolve()
    if args.connections < args.threads:
        parser.error("--connections must be >= --threads (wrk requirement)")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if any(args.scenarios.split(",").count(name) > 1 for name in CHECKOUT_SCENARIOS):
        parser.error("each checkout scenario may run once per server start (carts work once)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    queries = Queries(
        *(
            (QUERIES_DIR / f"{name}.graphql").read_text(encoding="utf-8")
            for name in (
                "listing_screen",
                "product_screen",
                "cart_read",
                "cart_lines_add",
                "checkout_complete",
            )
        )
    )
    listing_query, product_query = queries.listing, queries.product
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    if write_if_changed(LISTING_SCRIPT, render_listing_script(listing_query)):
        log(f"wrote {LISTING_SCRIPT.relative_to(REPO_ROOT)}")
    if args.write_scripts:
        return 0

    require_loopback(args.database_url, "--database-url")
    require_loopback(args.redis_url, "--redis-url")
    if not (args.app_dir / "app.py").exists():
        raise BenchError(f"server not ready: {args.app_dir / 'app.py'} does not exist")
    ensure_port_free(args.port)  # fail fast, before any database work
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    counts = prepare_database(args)
    slugs = asyncio.run(fetch_slugs(args.database_url, args.slugs))
    if not slugs:
        raise BenchError("no active products to request on the product screen")
    product_bodies = [json_body(product_query, {"slug": slug}) for slug in slugs]
    write_if_changed(PRODUCT_SCRIPT, render_product_script(product_bodies))

    available = {
        "listing_screen": Scenario(
            "listing_screen", LISTING_SCRIPT, [json_body(listing_query, LISTING_VARIABLES)]
        ),
        "product_screen": Scenario("product_screen", PRODUCT_SCRIPT, product_bodies),
        "search_screen": search_scenario(),
    }
    names = args.scenarios.split(",")

    results: list[RunResult] = []
    cart_note: str | None = None
    for workers in args.workers:
        measured, cart_note = measure(args, workers, names, available, queries)
        results.extend(measured)

    report, all_met = render_report(args, results, counts, len(slugs), cart_note)
    (RESULTS_DIR / "latest.md").write_text(report, encoding="utf-8")
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps({"counts": counts, "results": [asdict(r) for r in results]}, indent=2)
    )
    print(report)
    log(f"wrote {(RESULTS_DIR / 'latest.md').relative_to(REPO_ROOT)}")
    failed = [r for r in results if r.checkout is not None and r.checkout.failures]
    for r in failed:
        assert r.checkout is not None
        log(f"error: {r.scenario}, {r.workers} worker(s): {'; '.join(r.checkout.failures)}")
    return 1 if failed or (args.check_targets and not all_met) else 0


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwind through the try/finally blocks that stop servers


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        sys.exit(main())
    except BenchError as error:
        log(f"error: {error}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
