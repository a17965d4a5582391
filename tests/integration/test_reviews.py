"""Customers review products; the rating summary follows in the same transaction."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from domain.events import Topic
from persistence.db import Database
from persistence.tables import outbox
from schema.global_id import encode_gid
from tests.client import AppClient, customer_token
from tests.factories import CatalogFactory

WRITE = """mutation($p: ID!, $rating: Int!, $title: String!, $body: String!) {
  reviewCreate(input: {productId: $p, rating: $rating, title: $title, body: $body}) {
    review { id rating title body authorName } userErrors { field code message } } }"""
SUMMARY = '{ product(slug: "kettle") { ratingSummary { average count } reviews(first: 5) { edges { node { title } } } } }'


async def test_a_review_updates_the_summary_and_the_cached_product(
    client: AppClient, db: Database
) -> None:
    made = await CatalogFactory(db).product("Kettle")
    product = encode_gid("Product", made.id)
    ann = await customer_token(client, "ann@example.com")
    bob = await customer_token(client, "bob@example.com")
    before = (await client.query(SUMMARY)).data["product"]  # now cached in Redis

    first = await client.query(
        WRITE, {"p": product, "rating": 5, "title": "Great", "body": "Boils fast."}, token=ann
    )
    second = await client.query(
        WRITE, {"p": product, "rating": 2, "title": "Meh", "body": ""}, token=bob
    )
    after = (await client.query(SUMMARY)).data["product"]

    assert before["ratingSummary"] == {"average": 0.0, "count": 0}
    assert first.data["reviewCreate"]["review"]["authorName"] == "ann"
    assert second.data["reviewCreate"]["userErrors"] == []
    assert after["ratingSummary"] == {"average": 3.5, "count": 2}
    assert [e["node"]["title"] for e in after["reviews"]["edges"]] == ["Meh", "Great"]
    # The search indexer hears of it (ratings sort search results), once per review.
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic, outbox.c.payload).where(
                outbox.c.topic != Topic.EMAIL_VERIFICATION_REQUESTED.value  # the sign-up's
            )
        )
        events = [(row.topic, row.payload["product"]) for row in rows]
    assert events == [("ReviewCreated", made.id), ("ReviewCreated", made.id)]


async def test_one_review_per_customer_and_checked_input(client: AppClient, db: Database) -> None:
    made = await CatalogFactory(db).product("Kettle")
    draft = await CatalogFactory(db).product("Secret", status="draft")
    product = encode_gid("Product", made.id)
    ann = await customer_token(client, "ann@example.com")
    await client.query(WRITE, {"p": product, "rating": 4, "title": "Fine", "body": ""}, token=ann)

    cases = {
        "again": {"p": product, "rating": 5, "title": "Again", "body": ""},
        "rating": {"p": product, "rating": 6, "title": "x", "body": ""},
        "long": {"p": product, "rating": 3, "title": "t" * 201, "body": "b" * 5001},
        "draft": {"p": encode_gid("Product", draft.id), "rating": 3, "title": "x", "body": ""},
        "garbage": {"p": "nope", "rating": 3, "title": "x", "body": ""},
    }
    codes = {
        name: [
            e["code"]
            for e in (await client.query(WRITE, v, token=ann)).data["reviewCreate"]["userErrors"]
        ]
        for name, v in cases.items()
    }
    anonymous = await client.query(WRITE, cases["again"])

    assert codes == {
        "again": ["ALREADY_REVIEWED"],
        "rating": ["INVALID_RATING"],
        "long": ["TOO_LONG", "TOO_LONG"],
        "draft": ["PRODUCT_NOT_FOUND"],
        "garbage": ["PRODUCT_NOT_FOUND"],
    }
    assert anonymous.error_codes == ["UNAUTHENTICATED"]
    assert (await client.query(SUMMARY)).data["product"]["ratingSummary"] == {
        "average": 4.0,
        "count": 1,
    }


async def test_concurrent_reviews_of_one_product_all_count(client: AppClient, db: Database) -> None:
    made = await CatalogFactory(db).product("Kettle")
    product = encode_gid("Product", made.id)
    tokens = [await customer_token(client, f"c{i}@example.com") for i in range(20)]

    results = await asyncio.gather(
        *(
            client.query(
                WRITE,
                {"p": product, "rating": 1 + i % 5, "title": f"r{i}", "body": ""},
                token=token,
            )
            for i, token in enumerate(tokens)
        )
    )

    assert all(r.data["reviewCreate"]["userErrors"] == [] for r in results)
    summary = (await client.query(SUMMARY)).data["product"]["ratingSummary"]
    assert summary == {"average": 3.0, "count": 20}  # 4 x (1+2+3+4+5) / 20


async def test_me_lists_my_reviews_newest_first(client: AppClient, db: Database) -> None:
    make = CatalogFactory(db)
    kettles = [await make.product(f"Kettle {i}") for i in range(3)]
    ann = await customer_token(client, "ann@example.com")
    for i, made in enumerate(kettles):
        await client.query(
            WRITE,
            {"p": encode_gid("Product", made.id), "rating": 3, "title": f"t{i}", "body": ""},
            token=ann,
        )
    mine = "query($a: String) { me { reviews(first: 2, after: $a) { edges { node { title } } pageInfo { hasNextPage endCursor } } } }"

    page1 = (await client.query(mine, token=ann)).data["me"]["reviews"]
    page2 = (await client.query(mine, {"a": page1["pageInfo"]["endCursor"]}, token=ann)).data["me"][
        "reviews"
    ]

    assert [e["node"]["title"] for e in page1["edges"]] == ["t2", "t1"]
    assert page1["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["title"] for e in page2["edges"]] == ["t0"]
