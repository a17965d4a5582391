"""A screen costs a constant number of SQL statements, whatever its page size.

Budgets (cold cache / warm cache), counted by a listener on the engines:
  listing screen  products(first: N) with variants, stock, images, category, ratingSummary:
                  5 cold (products, variants, images, categories, stock); 2 warm (products
                  and stock; variants, images and categories come from Redis).
  product screen  product(slug:) with variants, stock, images, category+parent, reviews(first),
                  related(first) { variants images }: 10 cold; 3 warm (reviews, and stock
                  once per depth: stock and reviews are never cached, the related ranking is).
  cart            cart(id) with 5 or 50 lines, each with its variant, product and images:
                  5 cold (variants, products, stock, images, and the products' categories
                  for the seed's automatic category sale), 1 warm (stock), plus one Redis
                  HGETALL for the cart. The automatic discounts are kept in process
                  (DISCOUNT_CACHE_SECONDS): read once, not per cart read.
Warm, the Redis side is bounded too: MGETs issued in one loop turn are sent as one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from persistence.db import Database
from persistence.seed import seed_catalog
from settings import Settings
from tests.client import AppClient, CountingRedis, running_app, screen_query
from tests.conftest import SEED_COLUMNS, TEST_REDIS_URL

LISTING_COLD, LISTING_WARM = 5, 2
PRODUCT_COLD, PRODUCT_WARM = 10, 3


@pytest.fixture
async def seeded(settings: Settings, db: Database, clean: None) -> AsyncIterator[AppClient]:
    """The app on a Redis client that counts its commands: round trips are budgeted too."""
    await seed_catalog(db, customer_columns=SEED_COLUMNS, products=150, seed=7)
    async with running_app(settings, redis=CountingRedis.from_url(TEST_REDIS_URL)) as client:
        yield client


def product_screen(reviews: int, related: int) -> str:
    return (
        screen_query("product_screen")
        .replace("reviews(first: 10)", f"reviews(first: {reviews})")
        .replace("related(first: 8)", f"related(first: {related})")
    )


async def _flush_cache(client: AppClient) -> None:
    """Empty the catalog record cache only: carts live in the same Redis."""
    redis = client.container.redis
    keys = [key async for key in redis.scan_iter(f"{client.container.settings.cache_namespace}:*")]
    if keys:
        await redis.delete(*keys)


def _calls(client: AppClient, command: str) -> int:
    redis = client.container.redis
    assert isinstance(redis, CountingRedis)
    return redis.commands[command]


async def test_listing_screen_costs_the_same_for_5_and_50_products(seeded: AppClient) -> None:
    counts = {}
    for n in (5, 50):
        await _flush_cache(seeded)
        cold = await seeded.query(screen_query("listing_screen"), {"first": n})
        warm = await seeded.query(screen_query("listing_screen"), {"first": n})
        assert len(cold.data["products"]["edges"]) == n
        assert warm.data == cold.data
        counts[n] = (cold.statements, warm.statements)

    assert counts[5] == counts[50] == (LISTING_COLD, LISTING_WARM)


async def test_product_screen_costs_the_same_for_5_and_50_reviews_and_related(
    seeded: AppClient,
) -> None:
    listing = await seeded.query(
        "{ products(first: 100, sortKey: RATING, reverse: true) { edges { node { slug ratingSummary { count } } } } }"
    )
    busiest = max(
        listing.data["products"]["edges"], key=lambda e: e["node"]["ratingSummary"]["count"]
    )
    slug = busiest["node"]["slug"]
    counts = {}
    for n in (5, 50):
        await _flush_cache(seeded)
        cold = await seeded.query(product_screen(n, n), {"slug": slug})
        warm = await seeded.query(product_screen(n, n), {"slug": slug})
        product = cold.data["product"]
        assert len(product["reviews"]["edges"]) == min(n, busiest["node"]["ratingSummary"]["count"])
        assert len(product["related"]) > 5 if n == 50 else len(product["related"]) == 5
        assert all(r["variants"] for r in product["related"])
        assert warm.data == cold.data
        counts[n] = (cold.statements, warm.statements)

    assert counts[5] == counts[50] == (PRODUCT_COLD, PRODUCT_WARM)


async def test_nodes_of_many_products_is_one_statement(seeded: AppClient) -> None:
    listing = await seeded.query("{ products(first: 40) { edges { node { id } } } }")
    ids = [e["node"]["id"] for e in listing.data["products"]["edges"]]
    await _flush_cache(seeded)

    result = await seeded.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})

    assert [n["id"] for n in result.data["nodes"]] == ids
    assert result.statements == 1


async def test_warm_screens_cost_a_few_redis_round_trips(seeded: AppClient) -> None:
    listing = await seeded.query(screen_query("listing_screen"), {"first": 50})
    slug = listing.data["products"]["edges"][0]["node"]["slug"]
    rounds = {}
    for name, variables in (("listing_screen", {"first": 50}), ("product_screen", {"slug": slug})):
        await seeded.query(screen_query(name), variables)  # warm
        before = _calls(seeded, "MGET")
        await seeded.query(screen_query(name), variables)
        rounds[name] = _calls(seeded, "MGET") - before

    # listing: one MGET for the variants, images and categories of all 50 products.
    # product: five rounds, one per step of the query's dependency chain (slug ->
    # relations -> parent / related ranking -> related records -> their relations).
    assert rounds == {"listing_screen": 1, "product_screen": 5}


async def test_first_reviews_of_50_products_is_one_statement(seeded: AppClient) -> None:
    document = """{ products(first: 50, sortKey: RATING, reverse: true) { edges { node {
        ratingSummary { count } reviews(first: 3) { edges { node { rating createdAt } } } } } } }"""

    result = await seeded.query(document)

    products = [e["node"] for e in result.data["products"]["edges"]]
    assert len(products) == 50
    for product in products:
        dates = [e["node"]["createdAt"] for e in product["reviews"]["edges"]]
        assert len(dates) == min(3, product["ratingSummary"]["count"])
        assert dates == sorted(dates, reverse=True)
    assert result.statements == 2  # the products, then every product's reviews at once


async def test_products_of_every_category_in_a_list_is_one_statement(seeded: AppClient) -> None:
    document = """query($n: Int!) { categories(first: 30) { edges { node { slug
        products(first: $n, sortKey: PRICE) { edges { node { slug priceRange { minVariantPrice { amount } } } }
                                               pageInfo { hasNextPage } } } } } }"""

    # (categories x products is expensive: 5 per category keeps it under the cost limit)
    few, many = await seeded.query(document, {"n": 2}), await seeded.query(document, {"n": 5})

    for result, n in ((few, 2), (many, 5)):
        for edge in result.data["categories"]["edges"]:
            alone = await seeded.query(
                "query($s: String!, $n: Int!) { category(slug: $s) { products(first: $n, sortKey: PRICE) "
                "{ edges { node { slug priceRange { minVariantPrice { amount } } } } pageInfo { hasNextPage } } } }",
                {"s": edge["node"]["slug"], "n": n},
            )
            assert edge["node"]["products"] == alone.data["category"]["products"]
    assert any(e["node"]["products"]["edges"] for e in many.data["categories"]["edges"])
    # categories, then the products of all 27 categories at once
    assert few.statements == many.statements == 2


CART_SCREEN = """query($id: ID!) { cart(id: $id) { totalQuantity checkoutReady
  lines { quantity merchandise { sku price { amount } availableForSale product { title images { url } } }
          cost { subtotalAmount { amount } } }
  cost { totalAmount { amount } } warnings { code } } }"""


async def test_a_50_line_cart_costs_constant_sql_and_one_redis_read_for_the_cart(
    seeded: AppClient,
) -> None:
    listing = await seeded.query(
        "{ products(first: 100, filter: {inStock: true}) { edges { node { variants { id } } } } }"
    )
    variant_ids = [
        v["id"] for e in listing.data["products"]["edges"] for v in e["node"]["variants"]
    ]
    counts = {}
    for n in (5, 50):
        created = await seeded.query(
            "mutation($l: [CartLineInput!]!) { cartCreate(input: {lines: $l}) { cart { id } userErrors { code } } }",
            {"l": [{"variantId": v, "quantity": 1} for v in variant_ids[:n]]},
        )
        cart_id = created.data["cartCreate"]["cart"]["id"]
        await _flush_cache(seeded)
        await seeded.query("{ __typename }")
        reads_before = _calls(seeded, "HGETALL")
        cold = await seeded.query(CART_SCREEN, {"id": cart_id})
        warm = await seeded.query(CART_SCREEN, {"id": cart_id})
        cart_reads = _calls(seeded, "HGETALL") - reads_before
        assert len(cold.data["cart"]["lines"]) == n
        assert warm.data == cold.data
        counts[n] = (cold.statements, warm.statements, cart_reads)

    # cold: variants, products, stock, images, categories (the automatic category sale
    # needs the lines' categories); warm: stock only (always live).
    # The cart itself: one HGETALL per request (two requests here).
    assert counts[5] == counts[50] == (5, 1, 2)
