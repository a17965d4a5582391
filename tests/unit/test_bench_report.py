"""The benchmark report's figures: what a reader of bench/results/latest.md sees."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.checkout import CheckoutStats
from bench.config import FLASH_SALE, TARGET_RPS, TARGET_WORKERS
from bench.report import RunResult, fmt_sql, render_report, results_table, targets_section
from bench.wrk import WrkResult


def run(
    scenario: str = "listing_screen",
    *,
    workers: int = TARGET_WORKERS,
    checkout: CheckoutStats | None = None,
    **wrk: object,
) -> RunResult:
    figures: dict[str, object] = {"requests": 1000, "rps": 335.0, "p50_ms": 40.0, "p99_ms": 84.0}
    return RunResult(
        scenario=scenario,
        workers=workers,
        wrk=WrkResult(**(figures | wrk)),  # type: ignore[arg-type]
        sql_cold=5,
        sql_warm=[2, 2, 3],
        server_cpu_ms=5200.0,
        postgres_cpu_ms=1000.0,
        redis_cpu_ms=10.0,
        server_pids_changed=False,
        checkout=checkout,
    )


def test_a_row_shows_rate_latency_cpu_per_request_and_statement_ranges() -> None:
    table = results_table([run()])

    assert table.splitlines()[2] == (
        "| listing_screen | 2 | 335.0 | 40.00 | 84.00 | 5.20 | 5 | 2-3 | 0 |"
    )


def test_statement_samples_show_as_one_number_a_range_or_unknown() -> None:
    assert (fmt_sql([2, 2]), fmt_sql([3, 2, None]), fmt_sql([None])) == ("2", "2-3", "n/a")


def test_every_kind_of_error_is_named_in_the_errors_column() -> None:
    broken = run(non_2xx=3, socket_errors={"read": 2, "timeout": 0}, graphql_errors=4)
    refused = run("cart_lines_add", user_errors=7)

    assert broken.error_summary() == "non-2xx 3, read 2, GraphQL 4"
    assert refused.error_summary() == "userErrors 7"


def test_checkout_rate_leaves_out_the_fallback_of_an_exhausted_pool() -> None:
    # 1,000 responses at 400 req/s, of which 250 were `{ __typename }` fallbacks.
    checkout = run(
        "checkout", checkout=CheckoutStats(), rps=400.0, responses=1000, fallback=250, paid=740
    )

    assert checkout.rps == 300.0
    assert checkout.checkouts == 750
    assert checkout.not_paid == 10
    assert checkout.error_summary() == "not PAID 10, cart pool exhausted (250 fallback requests)"


def test_a_flash_sale_counts_out_of_stock_as_expected_and_a_failed_check_loudly() -> None:
    stats = CheckoutStats(failures=["oversold: 501 PAID orders for 500 units"])
    sale = run(FLASH_SALE, checkout=stats, responses=6527, paid=500, out_of_stock=6027, fallback=0)

    assert sale.not_paid == 0
    assert sale.error_summary() == "VERIFICATION FAILED"


def test_targets_pass_only_with_rate_latency_and_no_errors() -> None:
    listing_rps, product_rps = TARGET_RPS["listing_screen"], TARGET_RPS["product_screen"]
    good = [run("listing_screen", rps=listing_rps), run("product_screen", rps=product_rps)]
    slow = [run("listing_screen", rps=listing_rps - 1), run("product_screen", rps=product_rps)]
    erring = [
        run("listing_screen", rps=listing_rps, non_2xx=1),
        run("product_screen", rps=product_rps),
    ]

    assert targets_section(good)[1] is True
    assert targets_section(slow)[1] is False
    text, met = targets_section(erring)
    assert met is False and "- listing_screen: FAIL" in text and "errors non-2xx 1" in text
    assert targets_section([run("listing_screen", workers=1)])[0].count("not measured") == 2


def test_the_report_names_the_load_the_data_and_the_checkout_verdict() -> None:
    args = argparse.Namespace(
        threads=2,
        connections=16,
        duration=20,
        warmup=3,
        flash_stock=500,
        app_dir=Path("/nonexistent"),
    )
    stats = CheckoutStats(carts=10, warmup_pool=3, run_pool=3, hot_variant=42, stock_set=500)
    results = [
        run(),
        run(FLASH_SALE, checkout=stats, responses=10, paid=5, out_of_stock=5, fallback=0),
    ]
    counts: dict[str, int | None] = {
        "products": 10_000,
        "active_products": 9_000,
        "product_variants": 43_466,
        "reviews": 249_835,
    }

    report, _ = render_report(args, results, counts, 200, cart_note=None)

    assert "- Data: 10000 products (9000 active), 43466 variants, 249835 reviews" in report
    assert "- Load: wrk -t 2 -c 16 -d 20s --timeout 10s per run, after a 3s wrk warm-up" in report
    assert "- Git commit: n/a (no commit)" in report
    assert "## Checkout" in report and "Verification: OK" in report
