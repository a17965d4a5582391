"""Schema fuzz: generated queries and mutations never get a 5xx or INTERNAL_SERVER_ERROR.

hypothesis-graphql writes documents from the app's own schema (each root field alike, with
argument literals that include control characters, odd unicode and large numbers);
a second strategy sends hand-picked documents whose variables are hostile ids and
cursors (base64 of our own prefixes around bad keys), a third any text in the string
variables of test_hostile_input's documents (slugs, search, filters, emails, names). Each example goes through the
real app (production error masking, PostgreSQL, Redis, a small seeded catalog) as a
guest, a customer or staff. Every failure is collected, not shrunk, and the test fails
with the documents, variables and responses that caused them.

Bounded for CI (FUZZ_EXAMPLES, default 300 per strategy, derandomized); set
FUZZ_EXAMPLES=5000 to run it longer.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import Mode, mutations, queries

from resolvers.schema import build_schema
from tests.client import AppClient, customer_token, running_app
from tests.factories import CatalogFactory
from tests.integration.test_hostile_input import CASES, production_settings
from tests.shop import staff_token

T = TypeVar("T")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
SCHEMA = build_schema()
SDL = SCHEMA.as_str()
# One root field per document, chosen uniformly: hypothesis-graphql's from_schema spends
# most examples on the first field (`node`).
_ROOT = SCHEMA._schema
# Mostly valid documents (they reach the resolvers), some with one schema violation.
MODES = st.sampled_from([Mode.POSITIVE] * 4 + [Mode.NEGATIVE])
DOCUMENTS = st.one_of(
    st.tuples(st.sampled_from(sorted(_ROOT.query_type.fields)), MODES).flatmap(  # type: ignore[union-attr]
        lambda pick: queries(SDL, fields=[pick[0]], mode=pick[1])
    ),
    st.tuples(st.sampled_from(sorted(_ROOT.mutation_type.fields)), MODES).flatmap(  # type: ignore[union-attr]
        lambda pick: mutations(SDL, fields=[pick[0]], mode=pick[1])
    ),
)


class LoopThread:
    """An event loop of its own on a thread: hypothesis drives a sync test, each example
    runs its request on this loop (pytest-asyncio's loop stays untouched)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Shop:
    client: AppClient
    tokens: dict[str, str | None]
    failures: list[str] = field(default_factory=list)
    examples: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)  # first error code, or "ok"


async def _open_shop(database_url: str) -> tuple[Any, Shop]:
    app = running_app(production_settings(database_url, gateway_timeout_seconds=0.5))
    client = await app.__aenter__()
    catalog = CatalogFactory(client.container.db)
    parent = await catalog.category("home")
    child = await catalog.category("kitchen", parent=parent)
    for n, title in enumerate(["Mug", "Teapot", "Kettle", "Lamp"]):
        made = await catalog.product(
            title,
            category=child if n % 2 else parent,
            attributes={"colour": "red"},
            prices=[1000 + n, 2500],
            stock=[5, 0],
        )
        await catalog.review(made.id, rating=1 + n)
    tokens = {
        "guest": None,
        "customer": await customer_token(client, "fuzz@example.com"),
        "staff": await staff_token(client, client.container.db),
    }
    return app, Shop(client=client, tokens=tokens)


@pytest.fixture
def shop(database_url: str, clean: None) -> Iterator[tuple[LoopThread, Shop]]:
    loop = LoopThread()
    app, opened = loop.run(_open_shop(database_url))
    try:
        yield loop, opened
    finally:
        loop.run(app.__aexit__(None, None, None))
        loop.close()


async def _send(shop: Shop, who: str, body: dict[str, Any], method: str = "POST") -> None:
    token = shop.tokens[who]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shop.examples += 1
    if method == "GET":  # the cacheable path; a mutation gets 405
        params = {"query": body["query"], "variables": json.dumps(body.get("variables") or {})}
        response = await shop.client.http.get("/graphql", params=params, headers=headers)
    else:
        response = await shop.client.http.post("/graphql", json=body, headers=headers)
    internal = response.status_code >= 500 or "INTERNAL_SERVER_ERROR" in response.text
    shop.outcomes[_outcome(response)] += 1
    if internal:
        shop.failures.append(
            f"--- {method} as {who}: HTTP {response.status_code}\n"
            f"document: {body.get('query')}\nvariables: {json.dumps(body.get('variables'))}\n"
            f"response: {response.text[:2000]}"
        )


def _outcome(response: httpx.Response) -> str:
    """The first error's code, "ok", or what came back instead of a GraphQL body."""
    try:
        errors = response.json().get("errors")
    except ValueError:
        return f"HTTP {response.status_code} {response.headers.get('content-type')}"
    return str(errors[0].get("extensions", {}).get("code")) if errors else "ok"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


ODD_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "0", "-1", "²", "١٢", "\uff11", "9" * 19, "9" * 400, "1\x00", "\u2028"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
ODD_IDS = st.one_of(
    st.builds(
        lambda kind, key: _b64(f"gid://shop/{kind}/{key}".encode("utf-8", "surrogatepass")),
        st.sampled_from(["Product", "ProductVariant", "Category", "Review", "Cart", "Order", "X"]),
        ODD_TEXT,
    ),
    st.text(max_size=40),
    st.binary(max_size=40).map(_b64),
)
CURSOR_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)
ODD_CURSORS = st.one_of(
    st.builds(
        lambda ordering, values: _b64(json.dumps([ordering, *values]).encode()),
        st.sampled_from(
            [
                *("p:ID:asc", "p:TITLE:desc", "p:PRICE:asc", "p:CREATED_AT:asc", "p:RATING:desc"),
                *("reviews", "categories", "orders", "s:RELEVANCE:asc", "x"),
            ]
        ),
        st.lists(CURSOR_VALUES, max_size=3),
    ),
    st.binary(max_size=60).map(_b64),
    st.text(max_size=40),
)
ID_DOCUMENTS = [
    "query($id: ID!) { node(id: $id) { id __typename } }",
    "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
    "query($id: ID) { product(id: $id) { id title variants { id } } }",
    "query($id: ID!) { cart(id: $id) { id lines(first: 5) { edges { node { id } } } } }",
    "query($id: ID!) { order(id: $id) { id } }",
    """mutation($id: ID!, $v: ID!) { cartLinesAdd(input: {cartId: $id, lines: [{variantId: $v}]}) {
         cart { id } userErrors { code field } } }""",
    """mutation($id: ID!) { reviewCreate(input: {productId: $id, rating: 3, title: "t"}) {
         review { id } userErrors { code field } } }""",
]
CURSOR_DOCUMENTS = [
    "query($a: String, $s: ProductSortKeys!) { products(after: $a, sortKey: $s) { edges { cursor } } }",
    'query($a: String) { search(query: "mug", after: $a) { edges { cursor } } }',
    'query($a: String) { product(slug: "mug") { reviews(after: $a) { edges { cursor } } } }',
    "query($a: String) { categories(after: $a) { edges { cursor } } }",
    "query($a: String) { me { orders(after: $a) { edges { cursor } } reviews(after: $a) { edges { cursor } } } }",
]
WHO = st.sampled_from(["guest", "customer", "staff"])
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _assert_no_internal_errors(shop: Shop) -> None:
    print(f"schema fuzz: {shop.examples} examples, {len(shop.failures)} internal errors")
    print(f"schema fuzz outcomes: {dict(shop.outcomes.most_common())}")
    assert not shop.failures, (
        f"{len(shop.failures)} of {shop.examples} examples got a 5xx or INTERNAL_SERVER_ERROR:\n"
        + "\n".join(shop.failures[:20])
    )


def test_generated_documents_never_get_an_internal_error(
    shop: tuple[LoopThread, Shop],
) -> None:
    loop, opened = shop

    @FUZZ
    @given(document=DOCUMENTS, who=WHO, method=st.sampled_from(["POST", "POST", "GET"]))
    def run(document: str, who: str, method: str) -> None:
        loop.run(_send(opened, who, {"query": document}, method))

    run()

    _assert_no_internal_errors(opened)


def test_odd_ids_and_cursors_never_get_an_internal_error(
    shop: tuple[LoopThread, Shop],
) -> None:
    loop, opened = shop
    sort_keys = st.sampled_from(["ID", "TITLE", "PRICE", "CREATED_AT", "RATING"])

    @FUZZ
    @given(data=st.data(), who=WHO)
    def run(data: st.DataObject, who: str) -> None:
        if data.draw(st.booleans()):
            document = data.draw(st.sampled_from(ID_DOCUMENTS))
            ids = data.draw(st.lists(ODD_IDS, min_size=1, max_size=3))
            variables: dict[str, Any] = {"id": ids[0], "v": ids[-1], "ids": ids}
        else:
            document = data.draw(st.sampled_from(CURSOR_DOCUMENTS))
            variables = {"a": data.draw(ODD_CURSORS), "s": data.draw(sort_keys)}
        loop.run(_send(opened, who, {"query": document, "variables": variables}))

    run()

    _assert_no_internal_errors(opened)


def test_hostile_strings_in_variables_never_get_an_internal_error(
    shop: tuple[LoopThread, Shop],
) -> None:
    loop, opened = shop
    # Any text, control characters and surrogate-free astral planes included, plus long runs.
    hostile = st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=40),
        st.text(st.characters(max_codepoint=0x1F), max_size=5),
        st.integers(min_value=0, max_value=12_000).map(lambda n: "a" * n),
    )

    @FUZZ
    @given(case=st.sampled_from(CASES), text=hostile, who=WHO)
    def run(case: tuple[str, str, Any, str], text: str, who: str) -> None:
        _, document, variables, _ = case
        loop.run(_send(opened, who, {"query": document, "variables": variables(text)}))

    run()

    _assert_no_internal_errors(opened)
