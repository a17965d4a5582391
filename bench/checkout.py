"""The checkout scenarios: carts made up front, send-once scripts, the stock they sell
(put back afterwards) and what PostgreSQL says happened."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.config import (
    CHECKOUT_ADDRESS_MUTATION,
    CHECKOUT_CART_CREATE_MUTATION,
    CHECKOUT_DISCOUNT_MUTATION,
    CHECKOUT_PAYMENT_METHOD,
    CHECKOUT_POOL_MARGIN,
    CHECKOUT_RATE_GUESS,
    CHECKOUT_SCENARIOS,
    CHECKOUT_SETTLE_BUDGET_S,
    CHECKOUT_SETUP_BUDGET_S,
    CHECKOUT_SETUP_CONCURRENCY,
    CHECKOUT_VARIANT_MAX_USES,
    CHECKOUT_VARIANT_MIN_STOCK,
    FLASH_POOL_MARGIN,
    FLASH_SALE,
    FLASH_WARM_SPARE,
    HTTP_TIMEOUT_S,
    PRODUCT_PAGE_SIZE,
    RESULTS_DIR,
    STOCK_POOL_QUERY,
    WARM_SAMPLES,
    BenchError,
    log,
)
from bench.database import db_fetch
from bench.graphql_client import checked_data, graphql_post
from bench.scenarios import Queries, Scenario, json_body
from bench.wrk import WrkResult, render_checkout_script

# --------------------------------------------------------------------------- checkout


def gid_key(global_id: str) -> str:
    """The key of one of the API's global ids (base64 of `gid://shop/<Type>/<key>`)."""
    try:
        raw = base64.urlsafe_b64decode(global_id + "=" * (-len(global_id) % 4)).decode()
    except ValueError as exc:
        raise BenchError(f"not a global id: {global_id!r}") from exc
    return raw.rpartition("/")[2]


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


async def _set_up_carts(
    url: str, carts: Sequence[Sequence[str]], discount_code: str | None = None
) -> list[str]:
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
                if discount_code is not None:
                    data = await post(
                        "setup (cartDiscountCodesUpdate)",
                        json_body(
                            CHECKOUT_DISCOUNT_MUTATION, {"id": cart_id, "codes": [discount_code]}
                        ),
                    )
                    if data["cartDiscountCodesUpdate"]["userErrors"]:
                        raise BenchError(f"discount code refused: {json.dumps(data)[:2000]}")
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
        code = None if self.flash else self._args.discount_code
        cart_ids = asyncio.run(_set_up_carts(self._url, self._line_sets(count), code))
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
