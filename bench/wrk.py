"""wrk: the Lua scripts it runs (counters every script shares, rotating and send-once
bodies), running it, and parsing its output."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.config import FALLBACK_BODY, WRK_TIMEOUT, BenchError

# --------------------------------------------------------------------------- wrk scripts

LUA_COMMON = r"""
-- Per-thread counters, summed in done() and printed as one "bench:" line that
-- bench/run.py parses: responses whose JSON has an "errors" key (GraphQL errors arrive
-- with HTTP 200, so wrk's own non-2xx count misses them), the X-SQL-Statements header,
-- and, in scripts that set bench_count_user_errors (mutations), responses whose payload
-- has a non-empty userErrors list (a refused mutation also arrives with HTTP 200).
-- Checkout scripts (bench_count_checkout) also count orders with status PAID,
-- OUT_OF_STOCK refusals and the answers to the fallback `{ __typename }` request sent
-- once the script has run out of (cart, key) bodies, on a second "bench-checkout:" line.
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  bench_responses = 0
  bench_graphql_errors = 0
  bench_sql_sum = 0
  bench_sql_seen = 0
  bench_user_errors = 0
  bench_paid = 0
  bench_out_of_stock = 0
  bench_fallback = 0
end

function response(status, headers, body)
  bench_responses = bench_responses + 1
  if body and string.find(body, '"errors":', 1, true) then
    bench_graphql_errors = bench_graphql_errors + 1
  end
  if bench_count_user_errors and body and string.find(body, '"userErrors":[{', 1, true) then
    bench_user_errors = bench_user_errors + 1
  end
  if bench_count_checkout and body then
    if string.find(body, '"__typename":"Query"', 1, true) then
      bench_fallback = bench_fallback + 1
    elseif string.find(body, '"status":"PAID"', 1, true) then
      bench_paid = bench_paid + 1
    elseif string.find(body, '"code":"OUT_OF_STOCK"', 1, true) then
      bench_out_of_stock = bench_out_of_stock + 1
    end
  end
  local sql = headers["x-sql-statements"] or headers["X-SQL-Statements"]
  if sql then
    bench_sql_sum = bench_sql_sum + (tonumber(sql) or 0)
    bench_sql_seen = bench_sql_seen + 1
  end
end

function done(summary, latency, requests)
  local responses, graphql_errors, sql_sum, sql_seen, user_errors = 0, 0, 0, 0, 0
  local paid, out_of_stock, fallback = 0, 0, 0
  for _, thread in ipairs(threads) do
    responses = responses + (thread:get("bench_responses") or 0)
    graphql_errors = graphql_errors + (thread:get("bench_graphql_errors") or 0)
    sql_sum = sql_sum + (thread:get("bench_sql_sum") or 0)
    sql_seen = sql_seen + (thread:get("bench_sql_seen") or 0)
    user_errors = user_errors + (thread:get("bench_user_errors") or 0)
    paid = paid + (thread:get("bench_paid") or 0)
    out_of_stock = out_of_stock + (thread:get("bench_out_of_stock") or 0)
    fallback = fallback + (thread:get("bench_fallback") or 0)
  end
  io.write(string.format(
    "bench: responses=%d graphql_errors=%d sql_statements_sum=%d sql_statements_seen=%d"
      .. " user_errors=%d\n",
    responses, graphql_errors, sql_sum, sql_seen, user_errors))
  if bench_count_checkout then
    io.write(string.format("bench-checkout: paid=%d out_of_stock=%d fallback=%d\n",
      paid, out_of_stock, fallback))
  end
end
"""


def lua_long_string(text: str) -> str:
    """Quote `text` as a Lua long bracket string (`[==[...]==]`) that round-trips exactly."""
    if text.startswith(("\n", "\r")):
        raise ValueError("Lua drops a newline right after the opening long bracket")
    level = 0
    while True:
        close = "]" + "=" * level + "]"
        if (text + close).find(close) == len(text):
            return "[" + "=" * level + "[" + text + close
        level += 1


def render_rotating_script(
    header: str, bodies: Sequence[str], *, stride: int = 61, count_user_errors: bool = False
) -> str:
    """A wrk script sending `bodies` round robin, thread i starting at body i * stride."""
    items = "".join(f"  {lua_long_string(body)},\n" for body in bodies)
    return (
        header + 'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Accept"] = "application/json"\n'
        + ("bench_count_user_errors = true\n" if count_user_errors else "")
        + f"local bodies = {{\n{items}}}\n"
        "local cursor = nil\n"
        "\n"
        "function request()\n"
        "  if cursor == nil then\n"
        f"    cursor = ((thread_index or 0) * {stride}) % #bodies\n"
        "  end\n"
        "  cursor = cursor % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[cursor])\n"
        "end\n" + LUA_COMMON
    )


def render_checkout_script(header: str, bodies: Sequence[str], threads: int) -> str:
    """A wrk script sending each of `bodies` at most once: thread i (of `threads`) sends
    bodies i+1, i+1+threads, ... in order, then only FALLBACK_BODY (counted apart)."""
    items = "".join(f"  {lua_long_string(body)},\n" for body in bodies)
    return (
        header + 'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Accept"] = "application/json"\n'
        "bench_count_user_errors = true\n"
        "bench_count_checkout = true\n"
        f"local bodies = {{\n{items}}}\n"
        f"local fallback = {lua_long_string(FALLBACK_BODY)}\n"
        f"local planned_threads = {threads}\n"
        "local next_body = nil\n"
        "\n"
        "function request()\n"
        "  local index = thread_index or 0\n"
        "  if next_body == nil then\n"
        "    next_body = index + 1\n"
        "  end\n"
        "  local body = fallback\n"
        "  if index < planned_threads and next_body <= #bodies then\n"
        "    body = bodies[next_body]\n"
        "    next_body = next_body + planned_threads\n"
        "  end\n"
        "  return wrk.format(nil, nil, nil, body)\n"
        "end\n" + LUA_COMMON
    )


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


# --------------------------------------------------------------------------- wrk output


@dataclass
class WrkResult:
    requests: int | None = None
    rps: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    graphql_errors: int | None = None
    sql_statements_mean: float | None = None
    user_errors: int | None = None  # responses with a non-empty userErrors list
    responses: int | None = None  # counted by the Lua script
    # Checkout scripts only: PAID orders, OUT_OF_STOCK refusals, fallback requests.
    paid: int | None = None
    out_of_stock: int | None = None
    fallback: int | None = None


_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    result = WrkResult()
    if match := re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE):
        result.rps = float(match.group(1))
    if match := re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE):
        result.requests = int(match.group(1))
    distribution = output.partition("Latency Distribution")[2]
    for percentile, value, unit in re.findall(
        r"^\s*(50|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", distribution, re.MULTILINE
    ):
        if percentile == "50":
            result.p50_ms = to_ms(value, unit)
        else:
            result.p99_ms = to_ms(value, unit)
    if match := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        result.non_2xx = int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        names = ("connect", "read", "write", "timeout")
        result.socket_errors = {
            name: int(count) for name, count in zip(names, match.groups(), strict=True)
        }
    if match := re.search(
        r"^bench: responses=(\d+) graphql_errors=(\d+) sql_statements_sum=(\d+)"
        r" sql_statements_seen=(\d+)(?: user_errors=(\d+))?",
        output,
        re.MULTILINE,
    ):
        responses, graphql_errors, sql_sum, sql_seen = (int(group) for group in match.groups()[:4])
        result.responses = responses
        result.graphql_errors = graphql_errors
        result.sql_statements_mean = sql_sum / sql_seen if sql_seen else None
        if match.group(5) is not None:
            result.user_errors = int(match.group(5))
    if match := re.search(
        r"^bench-checkout: paid=(\d+) out_of_stock=(\d+) fallback=(\d+)", output, re.MULTILINE
    ):
        result.paid, result.out_of_stock, result.fallback = (int(g) for g in match.groups())
    return result


def run_wrk(
    script: Path, url: str, *, threads: int, connections: int, duration_s: int
) -> tuple[WrkResult, str]:
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration_s}s",
        "--timeout",
        WRK_TIMEOUT,
        "--latency",
        "-s",
        str(script),
        url,
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=duration_s + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration_s + 60}s") from exc
    output = completed.stdout + completed.stderr
    if completed.returncode != 0:
        raise BenchError(f"wrk failed (exit {completed.returncode}):\n{output}")
    return parse_wrk(completed.stdout), output
