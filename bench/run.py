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

import argparse
import asyncio
import base64
import datetime as dt
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import redis

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
QUERIES_DIR = BENCH_DIR / "queries"
RESULTS_DIR = BENCH_DIR / "results"
LISTING_SCRIPT = RESULTS_DIR / "listing.lua"
PRODUCT_SCRIPT = RESULTS_DIR / "product.lua"
SEARCH_SCRIPT = RESULTS_DIR / "search.lua"
CART_READ_SCRIPT = RESULTS_DIR / "cart_read.lua"
CART_ADD_SCRIPT = RESULTS_DIR / "cart_lines_add.lua"
# checkout.lua / checkout_flash_sale.lua (the measured run) and *-warmup.lua (the warm-up).

HOST = "127.0.0.1"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ADMIN_DATABASE = "test"
PROTECTED_DATABASES = frozenset({ADMIN_DATABASE, "postgres", "template0", "template1"})

LISTING_VARIABLES: dict[str, Any] = {"first": 20}
TARGET_WORKERS = 2
TARGET_RPS = {"listing_screen": 200.0, "product_screen": 300.0}
SCENARIOS = (
    "listing_screen",
    "product_screen",
    "cart_read",
    "cart_lines_add",
    "checkout",
    "checkout_flash_sale",
    "search_screen",
)
# search_screen: 20 results with facets and the listing fields, for words every seeded
# catalog holds (sent round robin).
SEARCH_WORDS = ("quality", "headphones", "laptop", "shirt", "camera")
CART_SCENARIOS = frozenset({"cart_read", "cart_lines_add"})
CHECKOUT = "checkout"
FLASH_SALE = "checkout_flash_sale"
CHECKOUT_SCENARIOS = frozenset({CHECKOUT, FLASH_SALE})

# Carts (see bench/README.md): every cart starts with CART_LINES distinct variants; a
# cart_lines_add cart is sent adds of CART_ADD_VARIANTS pre-chosen variants (its own
# CART_LINES plus the next ones in the variant pool), so it never holds more than
# CART_ADD_VARIANTS lines, far below the cart limit of 100.
CART_LINES = 10
CART_ADD_VARIANTS = 40
CART_KEY_PATTERN = "cart:*"  # the cart hashes of persistence/redis/cart_store.py
PRODUCT_PAGE_SIZE = 100  # the API's page size cap
CART_CREATE_MUTATION = (
    "mutation BenchCartCreate($lines: [CartLineInput!]!) {"
    " cartCreate(input: {lines: $lines}) { cart { id } userErrors { field code message } } }"
)
VARIANT_POOL_QUERY = (
    "query BenchVariants($first: Int!, $after: String) {"
    " products(first: $first, after: $after, filter: {inStock: true}) {"
    " edges { node { variants { id } } } pageInfo { hasNextPage endCursor } } }"
)
TARGET_P99_MS = 100.0

# Checkout (see bench/README.md): a checkout consumes its cart (deleted once paid) and its
# idempotency key, so every request body is sent at most once and each scenario creates
# its carts up front: a few probe carts and a warm-up pool before the cold samples, then
# a run pool of max(--checkout-carts / --flash-carts, margin x warm-up rate x --duration)
# carts right before the measured run. A script that runs out of bodies sends the cheap
# FALLBACK_BODY instead; those responses are counted apart and never as checkouts.
CHECKOUT_PAYMENT_METHOD = "pm_card_visa"  # the sandbox gateway's always-succeeding card
CHECKOUT_EMAIL = "bench@example.com"
CHECKOUT_ADDRESS = (
    '{firstName: "Ann", lastName: "Lee", address1: "1 Main St", city: "Berlin",'
    ' zip: "10115", countryCode: "DE"}'
)
CHECKOUT_CART_CREATE_MUTATION = (
    "mutation BenchCheckoutCart($lines: [CartLineInput!]!) {"
    f' cartCreate(input: {{lines: $lines, buyerIdentity: {{email: "{CHECKOUT_EMAIL}"}}}})'
    " { cart { id } userErrors { field code message } } }"
)
CHECKOUT_ADDRESS_MUTATION = (
    "mutation BenchCheckoutAddress($id: ID!) {"
    f" cartShippingAddressUpdate(input: {{cartId: $id, address: {CHECKOUT_ADDRESS}}})"
    " { cart { id checkoutReady } userErrors { field code message } } }"
)
STOCK_POOL_QUERY = (
    "query BenchStock($first: Int!, $after: String) {"
    " products(first: $first, after: $after, filter: {inStock: true}) {"
    " edges { node { variants { id quantityAvailable } } } pageInfo { hasNextPage endCursor } } }"
)
FALLBACK_BODY = '{"query":"{ __typename }"}'  # answered without SQL: "pool exhausted"
CHECKOUT_VARIANT_MIN_STOCK = 50  # only variants with at least this many units ...
CHECKOUT_VARIANT_MAX_USES = 20  # ... each in at most this many carts: never sold out
CHECKOUT_POOL_MARGIN = 2.0  # run pool >= margin x the warm-up's checkouts/s x duration
# The flash sale's warm-up sells the hot variant with plenty of stock; its run mostly
# refuses (OUT_OF_STOCK), which is cheaper, so it gets a wider margin.
FLASH_POOL_MARGIN = 4.0
CHECKOUT_RATE_GUESS = 150.0  # checkouts/s per worker, to size the warm-up pools only
CHECKOUT_SETUP_CONCURRENCY = 16  # concurrent cart set-ups (cartCreate + address)
CHECKOUT_SETUP_BUDGET_S = 900.0
CHECKOUT_SETTLE_BUDGET_S = 15.0  # wait for checkouts still in flight when wrk stops
FLASH_WARM_SPARE = 200  # hot-variant units left over after the flash sale's warm-up

WRK_TIMEOUT = "10s"  # wrk drops (and does not time) slower responses; keep p99 honest
HTTP_TIMEOUT_S = 30.0
HEALTH_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 20.0
WARM_PASS_BUDGET_S = 120.0
MIGRATE_TIMEOUT_S = 300.0
SEED_TIMEOUT_S = 3600.0
WARM_SAMPLES = 3
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A failure that aborts the run with a readable message."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


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


def json_body(query: str, variables: dict[str, Any]) -> str:
    """The exact request body wrk sends (and the harness sends for its own checks)."""
    return json.dumps({"query": query, "variables": variables}, separators=(",", ":"))


def render_listing_script(query: str) -> str:
    body = json_body(query, LISTING_VARIABLES)
    return (
        "-- Generated by bench/run.py from bench/queries/listing_screen.graphql"
        f" with variables {json.dumps(LISTING_VARIABLES)};\n"
        "-- run.py rewrites it when the query changes. Manual use:\n"
        "--   wrk -t2 -c16 -d20s --latency -s bench/results/listing.lua http://127.0.0.1:8700/graphql\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Accept"] = "application/json"\n'
        f"wrk.body = {lua_long_string(body)}\n" + LUA_COMMON
    )


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


def render_product_script(bodies: Sequence[str]) -> str:
    return render_rotating_script(
        "-- Generated by bench/run.py from bench/queries/product_screen.graphql:\n"
        f"-- one request body per product slug ({len(bodies)}), sent round robin; each wrk\n"
        "-- thread starts at a different offset. Manual use:\n"
        "--   wrk -t2 -c16 -d20s --latency -s bench/results/product.lua"
        " http://127.0.0.1:8700/graphql\n",
        bodies,
    )


def search_scenario() -> Scenario:
    query = (QUERIES_DIR / "search.graphql").read_text(encoding="utf-8")
    bodies = [json_body(query, {"query": word, "first": 20}) for word in SEARCH_WORDS]
    header = (
        "-- Generated by bench/run.py from bench/queries/search.graphql: one body per word\n"
        f"-- of SEARCH_WORDS ({len(bodies)}), sent round robin. Manual use:\n"
        "--   wrk -t2 -c16 -d20s --latency -s bench/results/search.lua"
        " http://127.0.0.1:8700/graphql\n"
    )
    write_if_changed(SEARCH_SCRIPT, render_rotating_script(header, bodies, stride=1))
    return Scenario("search_screen", SEARCH_SCRIPT, bodies)


def render_cart_read_script(bodies: Sequence[str], threads: int) -> str:
    return render_rotating_script(
        "-- Generated by bench/run.py from bench/queries/cart_read.graphql: one request body\n"
        f"-- per guest cart ({len(bodies)}, created through the API after the server started;\n"
        "-- the ids die with the next Redis FLUSHDB), sent round robin; each wrk thread starts\n"
        "-- at a different offset. Manual use (while those carts exist):\n"
        "--   wrk -t2 -c16 -d20s --latency -s bench/results/cart_read.lua"
        " http://127.0.0.1:8700/graphql\n",
        bodies,
        stride=max(1, len(bodies) // threads),
    )


def render_cart_add_script(bodies: Sequence[str], carts: int, threads: int) -> str:
    return render_rotating_script(
        "-- Generated by bench/run.py from bench/queries/cart_lines_add.graphql: one request\n"
        f"-- body per (cart, variant) pair ({carts} guest carts x {len(bodies) // carts} variants;"
        " body k\n"
        f"-- adds to cart k % {carts}), sent round robin; the {threads} wrk threads start"
        " evenly spread.\n"
        "-- Responses with a non-empty userErrors list count as errors. Not idempotent: every\n"
        "-- request adds 1 unit. Manual use (while those carts exist):\n"
        "--   wrk -t2 -c16 -d20s --latency -s bench/results/cart_lines_add.lua"
        " http://127.0.0.1:8700/graphql\n",
        bodies,
        stride=max(1, len(bodies) // threads),
        count_user_errors=True,
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


# --------------------------------------------------------------------------- CPU accounting


def _proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, utime+stime ticks) of a live process, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1 : data.rindex(")")]
    fields = data[data.rindex(")") + 2 :].split()  # fields[0] is field 3 ("state")
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def _all_stats() -> dict[int, tuple[str, int, int]]:
    stats: dict[int, tuple[str, int, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


@dataclass(frozen=True)
class CpuSnapshot:
    server: dict[int, int]  # uvicorn master and all descendants: pid -> ticks
    postgres: dict[int, int]
    redis: dict[int, int]


def cpu_snapshot(root_pid: int) -> CpuSnapshot:
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, int] = {}
    pending = [root_pid]
    while pending:
        pid = pending.pop()
        if pid in stats and pid not in tree:
            tree[pid] = stats[pid][2]
            pending.extend(children.get(pid, []))

    def by_comm(name: str) -> dict[int, int]:
        return {pid: ticks for pid, (comm, _, ticks) in stats.items() if comm == name}

    return CpuSnapshot(server=tree, postgres=by_comm("postgres"), redis=by_comm("redis-server"))


def cpu_delta_ms(before: dict[int, int], after: dict[int, int]) -> float:
    """CPU used between two snapshots by the processes alive at the second one."""
    ticks = sum(value - before.get(pid, 0) for pid, value in after.items())
    return ticks * 1000.0 / CLK_TCK


# --------------------------------------------------------------------------- database, cache


def _require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK_HOSTS:
        raise BenchError(f"{what} must point at 127.0.0.1 (got host {host!r})")


def asyncpg_dsn(database_url: str, database: str | None = None) -> str:
    """SQLAlchemy URL (`postgresql+asyncpg://...`) -> plain libpq-style DSN for asyncpg."""
    parts = urlsplit(database_url)
    path = f"/{database}" if database is not None else parts.path
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


def database_name(database_url: str) -> str:
    name = urlsplit(database_url).path.lstrip("/")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise BenchError(f"unsupported database name {name!r} in --database-url")
    return name


async def _ensure_database(database_url: str, fresh: bool) -> None:
    name = database_name(database_url)
    if fresh and name in PROTECTED_DATABASES:
        raise BenchError(f"refusing to drop database {name!r}")
    admin = await asyncpg.connect(asyncpg_dsn(database_url, ADMIN_DATABASE), timeout=10)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists and fresh:
            log(f"--fresh: dropping database {name}")
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            log(f"creating database {name}")
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def _fetch_counts(database_url: str) -> dict[str, int | None]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        counts: dict[str, int | None] = {}
        for table in ("products", "product_variants", "reviews"):
            exists = await connection.fetchval("SELECT to_regclass($1) IS NOT NULL", table)
            counts[table] = (
                await connection.fetchval(f"SELECT count(*) FROM {table}") if exists else None
            )
        if counts["products"] is not None:
            counts["active_products"] = await connection.fetchval(
                "SELECT count(*) FROM products WHERE status = 'active'"
            )
        return counts
    finally:
        await connection.close()


async def _fetch_slugs(database_url: str, limit: int) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT slug FROM products WHERE status = 'active' ORDER BY id LIMIT $1", limit
        )
        return [row["slug"] for row in rows]
    finally:
        await connection.close()


async def _vacuum_analyze(database_url: str) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
    try:
        await connection.execute("VACUUM (ANALYZE)")
    finally:
        await connection.close()


def flush_cache(redis_url: str, *, keep_carts: bool = False) -> None:
    """FLUSHDB; with keep_carts, put the cart hashes back afterwards (DUMP/RESTORE, with
    their expiry), so the catalog cache is empty but the benchmark's carts still exist."""
    if not urlsplit(redis_url).path.strip("/").isdigit():
        raise BenchError("--redis-url must name a database number, e.g. redis://127.0.0.1:6379/14")
    client = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        saved: list[tuple[Any, Any, Any]] = []
        if keep_carts:
            keys = list(client.scan_iter(match=CART_KEY_PATTERN, count=1000))
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.dump(key)
                pipe.pttl(key)
            dumped = pipe.execute()
            saved = [
                (key, dumped[2 * i], dumped[2 * i + 1])
                for i, key in enumerate(keys)
                if dumped[2 * i] is not None
            ]
        client.flushdb()
        if saved:
            pipe = client.pipeline(transaction=False)
            for key, value, pttl in saved:
                pipe.restore(key, max(int(pttl), 0), value)
            pipe.execute()
    finally:
        client.close()


# --------------------------------------------------------------------------- server process


def server_python(app_dir: Path) -> str:
    venv_python = app_dir / ".venv" / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


# Encrypts benchmark orders' emails and addresses only.
BENCH_PII_KEY = base64.urlsafe_b64encode(b"bench-pii-key-not-for-real-data!").decode()


def server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env.pop(proxy, None)
    env.update(
        DATABASE_URL=args.database_url,
        REDIS_URL=args.redis_url,
        ENVIRONMENT="production",
        EXPOSE_STATEMENT_COUNT="true",
        PAYMENT_GATEWAY="test",  # the in-memory sandbox: no network, Stripe's test cards
        PII_ENCRYPTION_KEYS=BENCH_PII_KEY,
        # One load generator on one address: limits that never bite, but are still
        # charged on every request, so their cost is in the figures.
        RATE_LIMIT_CAPACITY="1000000000",
        RATE_LIMIT_RESTORE_RATE="1000000000",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(args.app_dir),
        PYTHONUNBUFFERED="1",
    )
    return env


def run_app_command(
    args: argparse.Namespace, command: Sequence[str], timeout_s: float, *, capture: bool
) -> str:
    argv = [server_python(args.app_dir), "app.py", *command]
    try:
        completed = subprocess.run(
            argv,
            cwd=args.app_dir,
            env=server_env(args),
            capture_output=capture,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`app.py {' '.join(command)}` took longer than {timeout_s:.0f}s") from exc
    if completed.returncode != 0:
        detail = f"\n{completed.stdout}{completed.stderr}" if capture else ""
        raise BenchError(
            f"`app.py {' '.join(command)}` failed (exit {completed.returncode}){detail}"
        )
    return completed.stdout or ""


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError as exc:
            raise BenchError(f"port {port} on {HOST} is in use; pass --port") from exc


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log_path: Path

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise BenchError(
                f"server exited with code {self.process.returncode}; last log lines:\n"
                f"{log_tail(self.log_path)}"
            )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def stop_server(server: Server) -> None:
    """SIGTERM the server's process group, wait, then SIGKILL whatever is left."""
    pgid = server.process.pid  # started with start_new_session=True: pgid == pid
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        log("server ignored SIGTERM; sending SIGKILL")
    deadline = time.monotonic() + 5.0
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        log(f"server process {pgid} did not exit after SIGKILL")


@contextmanager
def running_server(args: argparse.Namespace, workers: int) -> Iterator[Server]:
    ensure_port_free(args.port)
    log_path = RESULTS_DIR / f"server-w{workers}.log"
    command = [
        server_python(args.app_dir),
        "-m",
        "uvicorn",
        "app:app",
        "--host",
        HOST,
        "--port",
        str(args.port),
        "--workers",
        str(workers),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=args.app_dir,
            env=server_env(args),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, log_path=log_path)
    try:
        wait_healthy(server, f"http://{HOST}:{args.port}/healthz")
        yield server
    finally:
        stop_server(server)


def wait_healthy(server: Server, url: str) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    last_error = "no response yet"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            server.check_alive()
            try:
                response = client.get(url)
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.2)
    raise BenchError(
        f"{url} not healthy after {HEALTH_TIMEOUT_S:.0f}s ({last_error}); last log lines:\n"
        f"{log_tail(server.log_path)}"
    )


# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Scenario:
    name: str
    script: Path
    bodies: list[str]  # every distinct request body the wrk script sends
    # The harness's own requests, when they must differ from `bodies` (mutations):
    # the warm pass (default: bodies) and the cold/warm statement samples (default: bodies).
    warm_bodies: list[str] | None = None
    probe_bodies: list[str] | None = None
    # Checkout: a body of its own for the cold sample (each body works once), a wrk
    # script of its own for the warm-up, and a check of every sample's `data`.
    cold_body: str | None = None
    warmup_script: Path | None = None
    probe_check: Callable[[dict[str, Any]], None] | None = None

    @property
    def warm_set(self) -> list[str]:
        return self.bodies if self.warm_bodies is None else self.warm_bodies

    @property
    def probes(self) -> list[str]:
        return self.bodies if self.probe_bodies is None else self.probe_bodies

    @property
    def cold_probe(self) -> str:
        return self.probes[0] if self.cold_body is None else self.cold_body


def graphql_request(
    client: httpx.Client,
    url: str,
    scenario: str,
    body: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> int | None:
    """POST one body; abort on HTTP or GraphQL errors, a null root field or non-empty
    userErrors (or when `check` raises); return X-SQL-Statements (if sent)."""
    response, data = graphql_post(client, url, scenario, body)
    if check is not None:
        check(data)
    header = response.headers.get("x-sql-statements")
    return int(header) if header is not None and header.strip().isdigit() else None


def graphql_post(
    client: httpx.Client, url: str, scenario: str, body: str
) -> tuple[httpx.Response, dict[str, Any]]:
    """POST one body; abort on HTTP or GraphQL errors, a null root field or a root payload
    with non-empty userErrors; return the response and its `data`."""
    try:
        response = client.post(url, content=body, headers={"Content-Type": "application/json"})
    except httpx.HTTPError as exc:
        raise BenchError(f"{scenario}: request failed: {exc!r}") from exc
    return response, checked_data(response, scenario, body)


def checked_data(response: httpx.Response, scenario: str, body: str) -> dict[str, Any]:
    """The `data` of a GraphQL response; BenchError on HTTP or GraphQL errors, a null root
    field or a root payload with non-empty userErrors."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise BenchError(
            f"{scenario}: HTTP {response.status_code}, not a JSON object:\n{response.text[:2000]}"
        )
    if "errors" in payload:
        errors = json.dumps(payload["errors"], indent=2)[:4000]
        raise BenchError(f"{scenario}: GraphQL errors (HTTP {response.status_code}):\n{errors}")
    data = payload.get("data")
    if response.status_code != 200 or not isinstance(data, dict):
        raise BenchError(f"{scenario}: HTTP {response.status_code}:\n{response.text[:2000]}")
    if nulls := [key for key, value in data.items() if value is None]:
        raise BenchError(f"{scenario}: data.{nulls[0]} is null for body {body[-200:]}")
    for key, value in data.items():
        if isinstance(value, dict) and value.get("userErrors"):
            errors = json.dumps(value["userErrors"], indent=2)[:4000]
            raise BenchError(f"{scenario}: data.{key}.userErrors for body {body[-300:]}:\n{errors}")
    return data


def http_client() -> httpx.Client:
    # trust_env=False: never route loopback requests through a proxy from the environment.
    return httpx.Client(timeout=HTTP_TIMEOUT_S, trust_env=False)


def warm_pass(client: httpx.Client, url: str, scenario: Scenario) -> None:
    """Request every distinct body once so the whole working set is in the cache."""
    deadline = time.monotonic() + WARM_PASS_BUDGET_S
    for index, body in enumerate(scenario.warm_set):
        if time.monotonic() > deadline:
            log(f"{scenario.name}: warm pass stopped after {index} bodies (time budget)")
            return
        graphql_request(client, url, scenario.name, body)


# --------------------------------------------------------------------------- carts


@dataclass(frozen=True)
class Queries:
    listing: str
    product: str
    cart_read: str
    cart_lines_add: str
    checkout: str


def fetch_variant_pool(client: httpx.Client, url: str, wanted: int) -> list[str]:
    """Global ids of up to `wanted` variants of in-stock products, in listing order."""
    pool: list[str] = []
    seen: set[str] = set()
    after: str | None = None
    while len(pool) < wanted:
        body = json_body(VARIANT_POOL_QUERY, {"first": PRODUCT_PAGE_SIZE, "after": after})
        _, data = graphql_post(client, url, "setup (products)", body)
        connection = data["products"]
        for edge in connection["edges"]:
            for variant in edge["node"]["variants"]:
                if variant["id"] not in seen:
                    seen.add(variant["id"])
                    pool.append(str(variant["id"]))
        page_info = connection["pageInfo"]
        if not page_info["hasNextPage"] or not page_info["endCursor"]:
            break
        after = str(page_info["endCursor"])
    return pool[:wanted]


def create_cart(client: httpx.Client, url: str, variant_ids: Sequence[str]) -> str:
    """A guest cart with one unit of each variant; aborts on userErrors."""
    lines = [{"variantId": variant_id, "quantity": 1} for variant_id in variant_ids]
    _, data = graphql_post(
        client, url, "setup (cartCreate)", json_body(CART_CREATE_MUTATION, {"lines": lines})
    )
    cart = data["cartCreate"].get("cart")
    if not isinstance(cart, dict) or not cart.get("id"):
        raise BenchError(f"cartCreate returned no cart: {json.dumps(data)[:2000]}")
    return str(cart["id"])


def interleave(own: Sequence[str], extra: Sequence[str]) -> list[str]:
    """own and extra merged evenly (10 + 30: three extras, then one own, and so on)."""
    total, merged = len(own) + len(extra), []
    own_iter, extra_iter = iter(own), iter(extra)
    for k in range(total):
        pick_own = (k + 1) * len(own) // total > k * len(own) // total
        merged.append(next(own_iter) if pick_own else next(extra_iter))
    return merged


def cart_scenarios(
    client: httpx.Client,
    url: str,
    names: Sequence[str],
    queries: Queries,
    *,
    carts: int,
    threads: int,
) -> tuple[dict[str, Scenario], str]:
    """Create the guest carts the selected cart scenarios need (through the API; carts live
    in Redis, so after every server start), write their wrk scripts, return the scenarios
    and a line for the report.

    Cart i starts with the pool's variants 10i..10i+9 (modulo the pool size). A
    cart_lines_add cart is sent adds of those 10 plus the pool's next 30 variants (the
    first 10 of carts i+1..i+3), 40 (cart, variant) pairs per cart, body k adding to cart
    k % carts: whatever the run length, no cart holds more than 40 lines (limit 100), and
    a line's quantity grows by at most one per wrk thread per pass over the 8,000 bodies
    (limit 999; every wrk run starts a new pass).
    """
    started = time.monotonic()
    pool = fetch_variant_pool(client, url, carts * CART_LINES)
    if len(pool) < CART_ADD_VARIANTS:
        raise BenchError(
            f"only {len(pool)} variants of in-stock products; the cart scenarios need at least"
            f" {CART_ADD_VARIANTS}"
        )
    if len(pool) < carts * CART_LINES:
        log(f"note: {len(pool)} in-stock variants for {carts} carts: carts share variants")

    def own(index: int) -> list[str]:
        return [pool[(CART_LINES * index + j) % len(pool)] for j in range(CART_LINES)]

    def add_order(index: int) -> list[str]:
        start = CART_LINES * (index + 1)
        extra = [pool[(start + j) % len(pool)] for j in range(CART_ADD_VARIANTS - CART_LINES)]
        return interleave(own(index), extra)

    def read_body(cart_id: str) -> str:
        return json_body(queries.cart_read, {"id": cart_id})

    def add_body(cart_id: str, variant_id: str) -> str:
        line = {"variantId": variant_id, "quantity": 1}
        return json_body(queries.cart_lines_add, {"input": {"cartId": cart_id, "lines": [line]}})

    scenarios: dict[str, Scenario] = {}
    notes: list[str] = []
    if "cart_read" in names:
        read_carts = [create_cart(client, url, own(i)) for i in range(carts)]
        bodies = [read_body(cart_id) for cart_id in read_carts]
        write_if_changed(CART_READ_SCRIPT, render_cart_read_script(bodies, threads))
        scenarios["cart_read"] = Scenario("cart_read", CART_READ_SCRIPT, bodies)
        notes.append(f"cart_read rotates over {carts} guest carts of {CART_LINES} lines")
    if "cart_lines_add" in names:
        add_carts = [create_cart(client, url, own(i)) for i in range(carts)]
        # A cart of its own for the harness's cold/warm samples (a mutation each), so they
        # do not touch the carts under load.
        probe_cart = create_cart(client, url, own(0))
        orders = [add_order(i) for i in range(carts)]
        bodies = [
            add_body(add_carts[c], orders[c][slot])
            for slot in range(CART_ADD_VARIANTS)
            for c in range(carts)
        ]
        write_if_changed(CART_ADD_SCRIPT, render_cart_add_script(bodies, carts, threads))
        scenarios["cart_lines_add"] = Scenario(
            "cart_lines_add",
            CART_ADD_SCRIPT,
            bodies,
            # The warm pass reads the carts instead of adding to them: that loads every
            # variant the adds touch (each cart's extras are other carts' lines).
            warm_bodies=[read_body(cart_id) for cart_id in add_carts],
            probe_bodies=[add_body(probe_cart, variant_id) for variant_id in orders[0]],
        )
        notes.append(
            f"cart_lines_add adds 1 unit per request to {carts} other guest carts (starting"
            f" with {CART_LINES} lines), rotating over {CART_ADD_VARIANTS} variants per cart"
            f" ({CART_LINES} in the cart, {CART_ADD_VARIANTS - CART_LINES} not yet)"
        )
    created = carts * len(scenarios) + ("cart_lines_add" in scenarios)  # + the probe cart
    log(
        f"created {created} guest carts from a pool of {len(pool)} in-stock variants"
        f" in {time.monotonic() - started:.1f}s"
    )
    note = "; ".join(notes) + (
        f"; carts created through the API after each server start, from a pool of"
        f" {len(pool)} variants of in-stock products"
    )
    return scenarios, note


# --------------------------------------------------------------------------- checkout


def gid_key(global_id: str) -> str:
    """The key of one of the API's global ids (base64 of `gid://shop/<Type>/<key>`)."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except ValueError as exc:
        raise BenchError(f"not a global id: {global_id!r}") from exc
    return raw.rpartition("/")[2]


def db_fetch(database_url: str, query: str, *params: Any) -> list[Any]:
    """Run one statement on its own connection; its rows (asyncpg Records)."""

    async def run() -> list[Any]:
        connection = await asyncpg.connect(asyncpg_dsn(database_url), timeout=10)
        try:
            return list(await connection.fetch(query, *params, timeout=60))
        finally:
            await connection.close()

    return asyncio.run(run())


class StockGuard:
    """The stock of the variants one checkout scenario sells (or sets), as it was when the
    scenario first touched them; restore() puts it back, so repeated runs see the same
    catalog (the orders stay)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self.original: dict[int, int] = {}

    def remember(self, variant_ids: Sequence[int]) -> dict[int, int]:
        """The current stock of `variant_ids` (kept, the first time, for restore())."""
        rows = db_fetch(
            self._url,
            "SELECT variant_id, available FROM inventory_levels"
            " WHERE variant_id = ANY($1::bigint[])",
            list(variant_ids),
        )
        current = {int(row["variant_id"]): int(row["available"]) for row in rows}
        if missing := set(variant_ids) - set(current):
            raise BenchError(f"no inventory_levels row for variant(s) {sorted(missing)[:10]}")
        for variant_id, available in current.items():
            self.original.setdefault(variant_id, available)
        return current

    def set(self, variant_id: int, available: int) -> None:
        self.remember([variant_id])
        db_fetch(
            self._url,
            "UPDATE inventory_levels SET available = $2, updated_at = now() WHERE variant_id = $1",
            variant_id,
            available,
        )

    def restore(self) -> None:
        if not self.original:
            return
        ids, values = zip(*sorted(self.original.items()), strict=True)
        db_fetch(
            self._url,
            "UPDATE inventory_levels AS i SET available = s.available, updated_at = now()"
            " FROM unnest($1::bigint[], $2::int[]) AS s(variant_id, available)"
            " WHERE i.variant_id = s.variant_id",
            list(ids),
            list(values),
        )
        self.original.clear()


class VariantSource:
    """Variants with at least CHECKOUT_VARIANT_MIN_STOCK units, from the product pages of
    in-stock products (live stock), each handed out once per server start."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self._client = client
        self._url = url
        self._ready: list[str] = []
        self._after: str | None = None
        self._done = False

    def take(self, count: int) -> list[str]:
        pages = 0
        while len(self._ready) < count and not self._done and pages < 1000:
            pages += 1
            body = json_body(STOCK_POOL_QUERY, {"first": PRODUCT_PAGE_SIZE, "after": self._after})
            _, data = graphql_post(self._client, self._url, "setup (checkout variants)", body)
            connection = data["products"]
            for edge in connection["edges"]:
                for variant in edge["node"]["variants"]:
                    if int(variant["quantityAvailable"]) >= CHECKOUT_VARIANT_MIN_STOCK:
                        self._ready.append(str(variant["id"]))
            page_info = connection["pageInfo"]
            self._after = page_info["endCursor"]
            self._done = not page_info["hasNextPage"] or not self._after
        if len(self._ready) < count:
            raise BenchError(
                f"only {len(self._ready)} more variants with >= {CHECKOUT_VARIANT_MIN_STOCK}"
                f" units in stock; the checkout scenarios need {count}"
            )
        taken, self._ready = self._ready[:count], self._ready[count:]
        return taken


async def _set_up_carts(url: str, carts: Sequence[Sequence[str]]) -> list[str]:
    semaphore = asyncio.Semaphore(CHECKOUT_SETUP_CONCURRENCY)
    limits = httpx.Limits(max_connections=CHECKOUT_SETUP_CONCURRENCY)
    async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, trust_env=False, limits=limits) as client:

        async def post(what: str, body: str) -> dict[str, Any]:
            try:
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/json"}
                )
            except httpx.HTTPError as exc:
                raise BenchError(f"{what}: request failed: {exc!r}") from exc
            return checked_data(response, what, body)

        async def one(variant_ids: Sequence[str]) -> str:
            lines = [{"variantId": variant_id, "quantity": 1} for variant_id in variant_ids]
            async with semaphore:
                data = await post(
                    "setup (checkout cartCreate)",
                    json_body(CHECKOUT_CART_CREATE_MUTATION, {"lines": lines}),
                )
                cart = data["cartCreate"].get("cart")
                if not isinstance(cart, dict) or not cart.get("id"):
                    raise BenchError(f"cartCreate returned no cart: {json.dumps(data)[:2000]}")
                cart_id = str(cart["id"])
                data = await post(
                    "setup (cartShippingAddressUpdate)",
                    json_body(CHECKOUT_ADDRESS_MUTATION, {"id": cart_id}),
                )
                if not (data["cartShippingAddressUpdate"].get("cart") or {}).get("checkoutReady"):
                    raise BenchError(f"cart not checkout-ready: {json.dumps(data)[:2000]}")
                return cart_id

        try:
            return await asyncio.wait_for(
                asyncio.gather(*(one(lines) for lines in carts)), CHECKOUT_SETUP_BUDGET_S
            )
        except TimeoutError as exc:
            raise BenchError(
                f"creating {len(carts)} checkout carts took over {CHECKOUT_SETUP_BUDGET_S:.0f}s"
            ) from exc


def require_paid(data: dict[str, Any]) -> None:
    """The check of the harness's own checkouts (cold and warm samples): a PAID order."""
    order = (data.get("checkoutComplete") or {}).get("order") or {}
    if order.get("status") != "PAID":
        raise BenchError(f"checkout sample not PAID: {json.dumps(data)[:2000]}")


@dataclass
class CheckoutStats:
    """One checkout scenario at one worker count: its carts and, after the run, what
    PostgreSQL says happened to the run pool's carts (orders) and to the stock."""

    carts: int = 0  # created: 1 + WARM_SAMPLES probe carts, the warm-up pool, the run pool
    warmup_pool: int = 0
    run_pool: int = 0
    setup_s: float = 0.0  # creating those carts (cartCreate + cartShippingAddressUpdate)
    warmup_rate: float | None = None  # PAID checkouts/s during the wrk warm-up
    db_orders: dict[str, int] = field(default_factory=dict)  # run pool: status -> orders
    min_stock_after: int | None = None  # lowest stock of the variants sold (checkout)
    # Flash sale only:
    hot_variant: int | None = None
    stock_before: int | None = None  # the hot variant's stock before the scenario (restored)
    stock_set: int | None = None  # set right before the measured run
    units_sold: int | None = None  # order_lines of PAID or PENDING_PAYMENT run-pool orders
    final_stock: int | None = None
    failures: list[str] = field(default_factory=list)


class CheckoutRun:
    """The carts, scripts and stock of one checkout scenario for one server start."""

    def __init__(
        self,
        name: str,
        args: argparse.Namespace,
        url: str,
        queries: Queries,
        variants: VariantSource,
        workers: int,
    ) -> None:
        self.name = name
        self.flash = name == FLASH_SALE
        self.stats = CheckoutStats()
        self.guard = StockGuard(args.database_url)
        self._args = args
        self._url = url
        self._queries = queries
        self._variants = variants
        self._workers = workers
        self._token = secrets.token_hex(6)
        self._keys = 0
        self._hot: str | None = None
        self._sold: list[int] = []  # checkout: every variant id put in a cart
        self._run_carts: list[str] = []  # cart keys (orders.cart_id) of the run pool

    @property
    def script(self) -> Path:
        return RESULTS_DIR / f"{self.name}.lua"

    @property
    def warmup_script(self) -> Path:
        return RESULTS_DIR / f"{self.name}-warmup.lua"

    def _body(self, cart_id: str) -> str:
        self._keys += 1
        key = f"bench-{self._token}-{self._keys}"  # unique per request, 8-255 characters
        variables = {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": key,
                "paymentMethod": CHECKOUT_PAYMENT_METHOD,
            }
        }
        return json_body(self._queries.checkout, variables)

    def _line_sets(self, carts: int) -> list[list[str]]:
        """Flash sale: one unit of the hot variant per cart. Checkout: 1 or 2 lines (cart k
        gets 1 + k % 2) of fresh variants with >= CHECKOUT_VARIANT_MIN_STOCK units, dealt
        round robin so no variant is in more than CHECKOUT_VARIANT_MAX_USES carts."""
        if self._hot is not None:
            return [[self._hot] for _ in range(carts)]
        sizes = [1 + k % 2 for k in range(carts)]
        count = max(2, math.ceil(sum(sizes) / CHECKOUT_VARIANT_MAX_USES))
        pool = self._variants.take(count)
        ids = [int(gid_key(variant)) for variant in pool]
        stock = self.guard.remember(ids)
        if short := [v for v in ids if stock[v] < CHECKOUT_VARIANT_MAX_USES]:
            raise BenchError(f"variants {short[:5]} lost their stock since they were listed")
        self._sold.extend(ids)
        line_sets, slot = [], 0
        for size in sizes:
            line_sets.append([pool[(slot + j) % count] for j in range(size)])
            slot += size
        return line_sets

    def _create(self, count: int) -> list[str]:
        started = time.monotonic()
        cart_ids = asyncio.run(_set_up_carts(self._url, self._line_sets(count)))
        elapsed = time.monotonic() - started
        self.stats.carts += count
        self.stats.setup_s += elapsed
        log(f"{self.name}: set up {count} checkout carts in {elapsed:.1f}s")
        return cart_ids

    def _write_script(self, path: Path, bodies: Sequence[str], what: str) -> None:
        threads = self._args.threads
        header = (
            f"-- Generated by bench/run.py from bench/queries/checkout_complete.graphql: {what}\n"
            f"-- {len(bodies)} checkout bodies, one per guest cart, each with its own\n"
            f"-- idempotency key; each is sent at most once (wrk thread i of {threads} sends\n"
            "-- bodies i+1, i+1+threads, ...), then the script sends `{ __typename }`, counted\n"
            "-- as fallback. (wrk calls request() once on thread 0 to check the script and\n"
            "-- drops that request: body 1 is never sent.) The carts are gone once paid, so\n"
            "-- the script works once: a second wrk run would replay the stored results.\n"
        )
        path.write_text(render_checkout_script(header, bodies, threads), encoding="utf-8")

    def setup(self) -> Scenario:
        """Before the cold samples: the probe carts and the warm-up pool (and the flash
        sale's hot variant, with enough stock for both)."""
        args = self._args
        warmup_pool = max(200, math.ceil(1.5 * CHECKOUT_RATE_GUESS * self._workers * args.warmup))
        probes = 1 + WARM_SAMPLES
        if self.flash:
            self._hot = self._variants.take(1)[0]
            hot = int(gid_key(self._hot))
            self.stats.hot_variant = hot
            self.stats.stock_before = self.guard.remember([hot])[hot]
            self.guard.set(hot, probes + warmup_pool + FLASH_WARM_SPARE)
        carts = self._create(probes + warmup_pool)
        self.stats.warmup_pool = warmup_pool
        warm = carts[probes:]
        self._write_script(
            self.warmup_script, [self._body(cart) for cart in warm], "the warm-up pool"
        )
        # The run script is written (with the run pool) right before the measured run.
        return Scenario(
            self.name,
            self.script,
            bodies=[],
            warm_bodies=[json_body(self._queries.cart_read, {"id": c}) for c in warm[:200]],
            cold_body=self._body(carts[0]),
            probe_bodies=[self._body(cart) for cart in carts[1:probes]],
            warmup_script=self.warmup_script,
            probe_check=require_paid,
        )

    def before_run(self, warmup: WrkResult) -> None:
        """After the warm-up: the run pool, sized from the warm-up's checkouts/s (doubled
        if the warm-up pool ran out), its script, and the flash sale's stock."""
        args = self._args
        rate = (warmup.paid or 0) / args.warmup
        if warmup.fallback:
            rate *= 2
        self.stats.warmup_rate = rate
        minimum = args.flash_carts if self.flash else args.checkout_carts
        margin = FLASH_POOL_MARGIN if self.flash else CHECKOUT_POOL_MARGIN
        count = max(minimum, math.ceil(margin * rate * args.duration))
        log(
            f"{self.name}: warm-up {rate:.1f} PAID checkouts/s; run pool of {count} carts"
            f" (max({minimum}, {margin:g} x rate x {args.duration}s))"
        )
        carts = self._create(count)
        self.stats.run_pool = count
        self._run_carts = [gid_key(cart) for cart in carts]
        self._write_script(self.script, [self._body(cart) for cart in carts], "the run pool")
        if self.flash:
            assert self.stats.hot_variant is not None
            self.guard.set(self.stats.hot_variant, args.flash_stock)
            self.stats.stock_set = args.flash_stock

    def _order_counts(self) -> dict[str, int]:
        rows = db_fetch(
            self._args.database_url,
            "SELECT status, count(*) AS n FROM orders WHERE cart_id = ANY($1::text[])"
            " GROUP BY status ORDER BY status",
            self._run_carts,
        )
        return {str(row["status"]): int(row["n"]) for row in rows}

    def after_run(self, wrk: WrkResult) -> None:
        """Wait for checkouts still in flight, read the orders and the stock from
        PostgreSQL, check the flash sale, then put the stock back."""
        try:
            self._verify(wrk)
        finally:
            self.guard.restore()
        for failure in self.stats.failures:
            log(f"error: {self.name}: {failure}")

    def _verify(self, wrk: WrkResult) -> None:
        deadline = time.monotonic() + CHECKOUT_SETTLE_BUDGET_S
        counts, previous = self._order_counts(), None
        while counts != previous or counts.get("PENDING_PAYMENT"):
            if time.monotonic() > deadline:
                log(f"{self.name}: orders still changing or pending after the run: {counts}")
                break
            time.sleep(0.5)
            counts, previous = self._order_counts(), counts
        stats = self.stats
        stats.db_orders = counts
        paid = counts.get("PAID", 0)
        if wrk.paid is not None and wrk.paid > paid:
            stats.failures.append(f"wrk saw {wrk.paid} PAID responses but the database has {paid}")
        if not self.flash:
            rows = db_fetch(
                self._args.database_url,
                "SELECT min(available) AS low FROM inventory_levels"
                " WHERE variant_id = ANY($1::bigint[])",
                self._sold,
            )
            stats.min_stock_after = None if rows[0]["low"] is None else int(rows[0]["low"])
            if stats.min_stock_after is not None and stats.min_stock_after < 0:
                stats.failures.append(f"stock went negative ({stats.min_stock_after})")
            return
        hot, stock_set = stats.hot_variant, stats.stock_set
        assert hot is not None and stock_set is not None
        final = db_fetch(
            self._args.database_url,
            "SELECT available FROM inventory_levels WHERE variant_id = $1",
            hot,
        )
        stats.final_stock = int(final[0]["available"])
        sold = db_fetch(
            self._args.database_url,
            "SELECT coalesce(sum(l.quantity), 0) AS units FROM order_lines l"
            " JOIN orders o ON o.id = l.order_id WHERE o.cart_id = ANY($1::text[])"
            " AND o.status IN ('PAID', 'PENDING_PAYMENT') AND l.variant_id = $2",
            self._run_carts,
            hot,
        )
        stats.units_sold = int(sold[0]["units"])
        if stats.final_stock < 0:
            stats.failures.append(f"the hot variant's stock went negative ({stats.final_stock})")
        if paid > stock_set:
            stats.failures.append(f"oversold: {paid} PAID orders for {stock_set} units")
        if stats.units_sold + stats.final_stock != stock_set:
            stats.failures.append(
                f"stock not conserved: {stats.units_sold} units sold + {stats.final_stock} left"
                f" != {stock_set} set"
            )
        if (wrk.out_of_stock or 0) and stats.final_stock > 0:
            stats.failures.append(
                f"{wrk.out_of_stock} buyers were refused OUT_OF_STOCK while"
                f" {stats.final_stock} units remained"
            )


def checkout_scenarios(
    client: httpx.Client,
    url: str,
    names: Sequence[str],
    queries: Queries,
    args: argparse.Namespace,
    workers: int,
) -> dict[str, CheckoutRun]:
    """A CheckoutRun per selected checkout scenario, its probe carts and warm-up pool made."""
    variants = VariantSource(client, url)
    runs: dict[str, CheckoutRun] = {}
    for name in names:
        if name in CHECKOUT_SCENARIOS:
            runs[name] = CheckoutRun(name, args, url, queries, variants, workers)
    return runs


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


# --------------------------------------------------------------------------- orchestration


def prepare_database(args: argparse.Namespace) -> dict[str, int | None]:
    asyncio.run(_ensure_database(args.database_url, args.fresh))
    log("running `app.py migrate`")
    run_app_command(args, ["migrate"], MIGRATE_TIMEOUT_S, capture=True)
    counts = asyncio.run(_fetch_counts(args.database_url))
    products = counts["products"]
    if products is None:
        raise BenchError("`app.py migrate` succeeded but there is no products table")
    if products == 0:
        log(f"seeding {args.products} products (`app.py seed --products {args.products}`)")
        run_app_command(
            args, ["seed", "--products", str(args.products)], SEED_TIMEOUT_S, capture=False
        )
        log("VACUUM (ANALYZE) after seeding")
        asyncio.run(_vacuum_analyze(args.database_url))
        counts = asyncio.run(_fetch_counts(args.database_url))
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

    _require_loopback(args.database_url, "--database-url")
    _require_loopback(args.redis_url, "--redis-url")
    if not (args.app_dir / "app.py").exists():
        raise BenchError(f"server not ready: {args.app_dir / 'app.py'} does not exist")
    ensure_port_free(args.port)  # fail fast, before any database work
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)

    counts = prepare_database(args)
    slugs = asyncio.run(_fetch_slugs(args.database_url, args.slugs))
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
