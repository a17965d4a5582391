"""The harness's fixed choices: paths, scenarios, pool sizes, timeouts; its error and log."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

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
CHECKOUT_DISCOUNT_MUTATION = (
    "mutation BenchCheckoutDiscount($id: ID!, $codes: [String!]!) {"
    " cartDiscountCodesUpdate(input: {cartId: $id, discountCodes: $codes})"
    " { cart { id checkoutReady discountCodes { code applicable } } userErrors { field code } } }"
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


class BenchError(Exception):
    """A failure that aborts the run with a readable message."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
