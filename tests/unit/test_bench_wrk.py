"""The benchmark's wrk side without wrk: the numbers read from its output, and the Lua
it is handed."""

from __future__ import annotations

import re

import pytest

from bench.config import FALLBACK_BODY
from bench.wrk import LUA_COMMON, lua_long_string, parse_wrk, render_checkout_script, to_ms

WRK_OUTPUT = """\
Running 20s test @ http://127.0.0.1:8700/graphql
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    47.25ms   18.40ms 310.17ms   80.12%
    Req/Sec   168.01     25.33   230.00     71.00%
  Latency Distribution
     50%   40.12ms
     75%   52.00ms
     90%   66.10ms
     99%    1.20s
  6700 requests in 20.01s, 12.60MB read
  Socket errors: connect 0, read 2, write 0, timeout 5
  Non-2xx or 3xx responses: 3
Requests/sec:    334.80
Transfer/sec:    644.61KB
bench: responses=6700 graphql_errors=2 sql_statements_sum=13400 sql_statements_seen=6700 user_errors=1
bench-checkout: paid=5 out_of_stock=6 fallback=7
"""


def test_a_full_wrk_report_gives_every_figure_of_the_benchmark_table() -> None:
    result = parse_wrk(WRK_OUTPUT)

    assert (result.requests, result.rps) == (6700, 334.8)
    assert (result.p50_ms, result.p99_ms) == (40.12, 1200.0)  # 1.20s read as milliseconds
    assert result.non_2xx == 3
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert (result.responses, result.graphql_errors, result.user_errors) == (6700, 2, 1)
    assert result.sql_statements_mean == 2.0
    assert (result.paid, result.out_of_stock, result.fallback) == (5, 6, 7)


def test_a_report_without_the_scripts_lines_leaves_their_figures_unknown() -> None:
    # A script without the shared counters (e.g. bench/ab/listing.lua), and no errors.
    plain = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if not line.startswith(("bench", "  Socket"))
    )

    result = parse_wrk(plain.replace("  Non-2xx or 3xx responses: 3\n", ""))

    assert result.rps == 334.8 and result.non_2xx == 0 and result.socket_errors == {}
    assert (result.responses, result.graphql_errors, result.sql_statements_mean) == (None,) * 3
    assert (result.paid, result.out_of_stock, result.fallback) == (None,) * 3


def test_no_header_seen_means_no_statement_mean_rather_than_a_division_by_zero() -> None:
    output = "bench: responses=10 graphql_errors=0 sql_statements_sum=0 sql_statements_seen=0\n"

    result = parse_wrk(output)

    assert result.responses == 10 and result.sql_statements_mean is None
    assert result.user_errors is None  # scripts older than the userErrors counter


@pytest.mark.parametrize(
    ("value", "unit", "ms"),
    [("250", "us", 0.25), ("40.5", "ms", 40.5), ("1.2", "s", 1200.0), ("2", "m", 120_000.0)],
)
def test_wrk_latencies_in_any_unit_become_milliseconds(value: str, unit: str, ms: float) -> None:
    assert to_ms(value, unit) == pytest.approx(ms)


@pytest.mark.parametrize(
    "text", ['{"query":"{ a }"}', "ends with ]]", "has ]=] and ]==] inside", "", "a]"]
)
def test_lua_long_strings_never_close_early(text: str) -> None:
    quoted = lua_long_string(text)

    level = re.fullmatch(r"\[(=*)\[", quoted[: quoted.index("[", 1) + 1])
    assert level is not None
    close = "]" + level.group(1) + "]"
    assert quoted == "[" + level.group(1) + "[" + text + close
    assert close not in text + close[:-1]  # the body holds no closing bracket of its level


def test_a_leading_newline_is_refused_because_lua_would_drop_it() -> None:
    with pytest.raises(ValueError, match="newline"):
        lua_long_string("\nquery")


def test_the_checkout_script_sends_each_body_once_then_only_the_fallback() -> None:
    bodies = ['{"n":1}', '{"n":2}', '{"n":3}']

    script = render_checkout_script("-- header\n", bodies, threads=2)

    assert script.startswith("-- header\n")
    assert script.endswith(LUA_COMMON)
    assert "bench_count_checkout = true" in script
    assert "local planned_threads = 2" in script
    assert f"local fallback = {lua_long_string(FALLBACK_BODY)}" in script
    assert [f"  {lua_long_string(body)}," in script for body in bodies] == [True] * 3
    assert "next_body = next_body + planned_threads" in script  # a stride: no body twice
