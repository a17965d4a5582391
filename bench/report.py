"""The results of one run and the Markdown report (tables, targets, checkout checks)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.checkout import CheckoutStats
from bench.config import (
    CHECKOUT,
    CHECKOUT_PAYMENT_METHOD,
    CHECKOUT_SETUP_CONCURRENCY,
    CHECKOUT_VARIANT_MAX_USES,
    CHECKOUT_VARIANT_MIN_STOCK,
    FLASH_SALE,
    LISTING_VARIABLES,
    TARGET_P99_MS,
    TARGET_RPS,
    TARGET_WORKERS,
    WARM_SAMPLES,
    WRK_TIMEOUT,
)
from bench.wrk import WrkResult

# --------------------------------------------------------------------------- results


@dataclass
class RunResult:
    scenario: str
    workers: int
    wrk: WrkResult
    sql_cold: int | None
    sql_warm: list[int | None]
    server_cpu_ms: float
    postgres_cpu_ms: float
    redis_cpu_ms: float
    server_pids_changed: bool
    checkout: CheckoutStats | None = None

    def per_request(self, cpu_ms: float) -> float | None:
        return cpu_ms / self.wrk.requests if self.wrk.requests else None

    @property
    def checkouts(self) -> int | None:
        """Checkout scenarios: responses to checkout bodies (not to the fallback)."""
        if self.checkout is None or self.wrk.responses is None:
            return None
        return self.wrk.responses - (self.wrk.fallback or 0)

    @property
    def rps(self) -> float | None:
        """wrk's req/s; for checkout, without the fallback requests of an exhausted pool."""
        rps, responses, fallback = self.wrk.rps, self.wrk.responses, self.wrk.fallback
        if rps is None or not fallback or not responses:
            return rps
        return rps * (responses - fallback) / responses

    @property
    def not_paid(self) -> int | None:
        """Checkout responses without a PAID order (the flash sale's OUT_OF_STOCK refusals
        are expected and not counted)."""
        checkouts = self.checkouts
        if checkouts is None:
            return None
        expected = (self.wrk.out_of_stock or 0) if self.scenario == FLASH_SALE else 0
        return checkouts - (self.wrk.paid or 0) - expected

    def error_summary(self) -> str:
        parts = [f"non-2xx {self.wrk.non_2xx}"] if self.wrk.non_2xx else []
        parts += [f"{name} {count}" for name, count in self.wrk.socket_errors.items() if count]
        if self.wrk.graphql_errors:
            parts.append(f"GraphQL {self.wrk.graphql_errors}")
        if self.checkout is not None:
            if self.not_paid:
                parts.append(f"not PAID {self.not_paid}")
            if self.wrk.fallback:
                parts.append(f"cart pool exhausted ({self.wrk.fallback} fallback requests)")
            if self.checkout.failures:
                parts.append("VERIFICATION FAILED")
        elif self.wrk.user_errors:
            parts.append(f"userErrors {self.wrk.user_errors}")
        return ", ".join(parts) or "0"


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_sql(values: Sequence[int | None]) -> str:
    known = sorted({value for value in values if value is not None})
    if not known:
        return "n/a"
    return str(known[0]) if len(known) == 1 else f"{known[0]}-{known[-1]}"


def results_table(results: Sequence[RunResult]) -> str:
    lines = [
        "| scenario | workers | req/s | p50 ms | p99 ms | CPU ms/req "
        "| SQL stmts/req cold | SQL stmts/req warm | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.scenario} | {r.workers} | {fmt(r.rps)} | {fmt(r.wrk.p50_ms, 2)} "
            f"| {fmt(r.wrk.p99_ms, 2)} | {fmt(r.per_request(r.server_cpu_ms), 2)} "
            f"| {fmt_sql([r.sql_cold])} | {fmt_sql(r.sql_warm)} | {r.error_summary()} |"
        )
    return "\n".join(lines)


def details_table(results: Sequence[RunResult], duration_s: int) -> str:
    lines = [
        "| scenario | workers | requests | server CPU % of one core "
        "| SQL stmts/req under load | postgres CPU ms/req | redis CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        cpu_share = 100.0 * r.server_cpu_ms / (duration_s * 1000.0)
        pids_note = " (worker pids changed!)" if r.server_pids_changed else ""
        lines.append(
            f"| {r.scenario} | {r.workers} | {r.wrk.requests or 0} | {cpu_share:.0f}{pids_note} "
            f"| {fmt(r.wrk.sql_statements_mean, 2)} | {fmt(r.per_request(r.postgres_cpu_ms), 2)} "
            f"| {fmt(r.per_request(r.redis_cpu_ms), 3)} |"
        )
    return "\n".join(lines)


def checkout_section(args: argparse.Namespace, results: Sequence[RunResult]) -> str:
    """The "Checkout" section: carts, outcomes and the flash sale's verification."""
    runs = [r for r in results if r.checkout is not None]
    if not runs:
        return ""
    lines = [
        "## Checkout",
        "",
        f"Each request completes one guest cart (1-2 lines, quantity 1, email and shipping"
        f" address set) with {CHECKOUT_PAYMENT_METHOD} on the in-process sandbox gateway and its"
        " own idempotency key; every body is sent at most once. Carts are created through the"
        " API after the server start (probe carts and a warm-up pool) and right before the"
        " measured run (the run pool: max(minimum, margin x warm-up checkouts/s x duration));"
        f" checkout spreads its lines over variants with >= {CHECKOUT_VARIANT_MIN_STOCK} units,"
        f" each in <= {CHECKOUT_VARIANT_MAX_USES} carts. checkout_flash_sale: every cart holds 1"
        f" unit of one hot variant whose stock is set to {args.flash_stock} right before the"
        " measured run. The stock the scenarios sold is put back afterwards (the orders stay).",
        "",
        "| scenario | workers | checkouts/s | responses | PAID | OUT_OF_STOCK | not PAID (errors) "
        "| fallback | SQL stmts/checkout under load | carts made | cart setup s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        stats = r.checkout
        assert stats is not None
        lines.append(
            f"| {r.scenario} | {r.workers} | {fmt(r.rps)} | {r.checkouts} | {r.wrk.paid} "
            f"| {r.wrk.out_of_stock} | {r.not_paid} | {r.wrk.fallback} "
            f"| {fmt(r.wrk.sql_statements_mean, 2)} "
            f"| {stats.carts} ({1 + WARM_SAMPLES} + {stats.warmup_pool} + {stats.run_pool}) "
            f"| {stats.setup_s:.1f} |"
        )
    lines += [
        "",
        "- carts made: probe carts (cold + warm samples) + warm-up pool + run pool; cart setup:"
        " the time creating them (cartCreate + cartShippingAddressUpdate each, "
        f"{CHECKOUT_SETUP_CONCURRENCY} at a time).",
        "- fallback: `{ __typename }` requests sent once a wrk thread had used up its bodies;"
        " they are left out of checkouts/s (latency percentiles include them).",
        "- PostgreSQL may count up to --connections more PAID orders than wrk saw: the"
        " checkouts in flight when wrk stops still complete (the harness waits for them).",
    ]
    for r in runs:
        stats = r.checkout
        assert stats is not None
        if r.scenario == CHECKOUT:
            lines.append(
                f"- checkout, {r.workers} worker(s): run-pool orders in PostgreSQL"
                f" {json.dumps(stats.db_orders)}; lowest stock of the variants sold, before"
                f" putting it back: {stats.min_stock_after}"
            )
            continue
        verdict = "**FAILED: " + "; ".join(stats.failures) + "**" if stats.failures else "OK"
        lines.append(
            f"- checkout_flash_sale, {r.workers} worker(s): variant {stats.hot_variant}"
            f" (stock {stats.stock_before} before, put back afterwards) set to"
            f" {stats.stock_set} units; {r.checkouts} buyers: {r.wrk.paid} PAID,"
            f" {r.wrk.out_of_stock} OUT_OF_STOCK, {r.not_paid} other. PostgreSQL after the"
            f" run: run-pool orders {json.dumps(stats.db_orders)}, {stats.units_sold} units in"
            f" PAID/pending orders, final stock {stats.final_stock}. Verification: {verdict}"
        )
    return "\n".join(lines) + "\n"


def targets_section(results: Sequence[RunResult]) -> tuple[str, bool]:
    lines = [
        f"Targets ({TARGET_WORKERS} workers, warm cache, 16 connections): "
        f"listing_screen >= {TARGET_RPS['listing_screen']:.0f} req/s, "
        f"product_screen >= {TARGET_RPS['product_screen']:.0f} req/s, "
        f"p99 < {TARGET_P99_MS:.0f} ms, no errors.",
        "",
    ]
    all_met = True
    for scenario, rps_target in TARGET_RPS.items():
        run = next(
            (r for r in results if r.scenario == scenario and r.workers == TARGET_WORKERS), None
        )
        if run is None:
            lines.append(f"- {scenario}: not measured")
            all_met = False
            continue
        rps, p99 = run.wrk.rps or 0.0, run.wrk.p99_ms
        met = (
            rps >= rps_target
            and p99 is not None
            and p99 < TARGET_P99_MS
            and run.error_summary() == "0"
        )
        all_met = all_met and met
        lines.append(
            f"- {scenario}: {'PASS' if met else 'FAIL'} ({fmt(rps)} req/s, p99 {fmt(p99, 2)} ms,"
            f" errors {run.error_summary()})"
        )
    return "\n".join(lines), all_met


def git_commit(app_dir: Path) -> str:
    def git(*argv: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=app_dir, capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit is None:
        return "n/a (no commit)"
    return f"{commit}{' (dirty)' if git('status', '--porcelain') else ''}"


def render_report(
    args: argparse.Namespace,
    results: Sequence[RunResult],
    counts: dict[str, int | None],
    slug_count: int,
    cart_note: str | None = None,
) -> tuple[str, bool]:
    targets, all_met = targets_section(results)
    carts_line = f"- Carts: {cart_note}\n" if cart_note else ""
    user_errors_note = (
        ",\n  and (cart_lines_add) responses with a non-empty userErrors list (a refused add)"
        if any(r.scenario == "cart_lines_add" for r in results)
        else ""
    )
    count = {key: "n/a" if value is None else str(value) for key, value in counts.items()}
    checkout_block = checkout_section(args, results)
    if checkout_block:
        checkout_block = "\n" + checkout_block
    if any(r.checkout is not None for r in results):
        user_errors_note += (
            ",\n  and (checkout) responses without a PAID order (for checkout_flash_sale:"
            " other than\n  OUT_OF_STOCK); checkout req/s leaves out fallback requests"
        )
    report = f"""# Benchmark: GraphQL commerce API

- Date: {dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
- Git commit: {git_commit(args.app_dir)}
- Data: {count["products"]} products ({count.get("active_products", "n/a")} active), \
{count["product_variants"]} variants, {count["reviews"]} reviews
- Load: wrk -t {args.threads} -c {args.connections} -d {args.duration}s --timeout {WRK_TIMEOUT} \
per run, after a {args.warmup}s wrk warm-up; product_screen rotates over {slug_count} \
active product slugs; listing_screen variables {json.dumps(LISTING_VARIABLES)}
{carts_line}- Server: uvicorn app:app --loop uvloop --http httptools, ENVIRONMENT=production
- Host: {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, \
Python {platform.python_version()}; wrk, the server, PostgreSQL and Redis share this host

{results_table(results)}

- CPU ms/req: utime+stime of the uvicorn master and all its descendants during the wrk run,
  divided by wrk's request count. wrk's own CPU (and PostgreSQL's/Redis's) is not counted.
- SQL stmts/req cold: first request after Redis FLUSHDB; warm: after the warm-up
  (several samples, shown as a range when they differ).
- errors: wrk non-2xx responses, socket errors (connect/read/write/timeout) and responses
  whose JSON carries an "errors" key{user_errors_note}.

## Targets

{targets}

## Details

{details_table(results, args.duration)}
{checkout_block}"""
    return report, all_met
