"""Compiled plans answer byte for byte what graphql-core's executor answers.

Every document goes through the real app twice on one seeded catalog: once with the
schema's plan cache (the production path) and once with it switched off (graphql-core's
executor and the plain-data path, as before plans existed). The response bodies must be
identical bytes, errors and extensions included; only the random ids of logged failures
(`errorId`, 32 hex digits) are masked, since each request logs under a new one. The SQL
statement count must be the same too.

Documents: (a) every bench/queries document, with the bench's variables; (b) every query
document written in tests/ (string literals and .graphql files), with variables inferred
from their names and types, or skipped with a counted reason; (c) selections generated
by hypothesis-graphql over the Query type's catalog fields (bounded, derandomized);
(d) hand-written ones for aliases, fragments, `__typename`, `@include`/`@skip` on
variables, nulls, coded errors at nullable and non-null positions, nested lists.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    TypeNode,
    get_named_type,
    is_leaf_type,
    is_required_argument,
    parse,
    validate,
)
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import queries
from starlette.applications import Starlette

from persistence.db import Database
from persistence.seed import seed_catalog
from resolvers.extensions.compiled import PlanCache
from resolvers.extensions.execution import PlainDataExecutionContext
from settings import Settings
from tests.client import AppClient, running_app
from tests.conftest import SEED_COLUMNS
from tests.integration.test_schema_fuzz import LoopThread

ROOT = Path(__file__).resolve().parents[2]
RANDOM_ID = re.compile(rb"[0-9a-f]{32}")
CATALOG_FIELDS = ["products", "product", "categories", "category", "search"]
GENERATED_EXAMPLES = 200


@dataclass
class Both:
    """Runs a document through the plan and through the executor, and compares."""

    client: AppClient
    context_class: type[PlainDataExecutionContext]
    plans: PlanCache
    ids: dict[str, Any]
    mismatches: list[str] = field(default_factory=list)

    @contextmanager
    def executor_only(self) -> Iterator[None]:
        self.context_class.plans = None
        try:
            yield
        finally:
            self.context_class.plans = self.plans

    async def _post(
        self, document: str, variables: dict[str, Any], operation: str | None
    ) -> tuple[int, bytes, str | None]:
        body: dict[str, Any] = {"query": document, "variables": variables}
        if operation is not None:
            body["operationName"] = operation
        response = await self.client.http.post("/graphql", json=body)
        return (
            response.status_code,
            RANDOM_ID.sub(b"<id>", response.content),
            response.headers.get("x-sql-statements"),
        )

    async def compare(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        operation: str | None = None,
        *,
        statements: bool = True,
    ) -> bool:
        """Whether the plan ran; a mismatch is recorded, not raised, so a run reports all."""
        variables = variables or {}
        with self.executor_only():
            await self._post(document, variables, operation)  # warm the record cache
        executed = self.plans.executed
        compiled = await self._post(document, variables, operation)
        planned = self.plans.executed > executed
        with self.executor_only():
            ordinary = await self._post(document, variables, operation)
        if not statements:
            compiled, ordinary = (*compiled[:2], None), (*ordinary[:2], None)
        if compiled != ordinary:
            self.mismatches.append(
                f"{document}\nvariables {variables}\ncompiled {compiled!r}\nexecutor {ordinary!r}"
            )
        return planned


def context_class_of(app: Starlette) -> type[PlainDataExecutionContext]:
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        schema = getattr(endpoint, "schema", None)
        if getattr(route, "path", None) == "/graphql" and schema is not None:
            context_class = schema.execution_context_class
            assert issubclass(context_class, PlainDataExecutionContext)
            return context_class
    raise AssertionError("no /graphql route")


async def _open(settings: Settings) -> tuple[Any, Both]:
    app = running_app(settings)
    client = await app.__aenter__()
    # The app's own engine: this may run on another thread's loop than the session's.
    await seed_catalog(client.container.db, customer_columns=SEED_COLUMNS, products=30, seed=11)
    context_class = context_class_of(client.app)
    assert context_class.plans is not None
    listing = await client.query(
        "{ products(first: 5, filter: {inStock: true}) { edges { node { id slug"
        " variants { id } category { id slug } } } } }"
    )
    nodes = [edge["node"] for edge in listing.data["products"]["edges"]]
    made = await client.query(
        "mutation($lines: [CartLineInput!]!) { cartCreate(input: {lines: $lines})"
        " { cart { id } userErrors { code } } }",
        {"lines": [{"variantId": node["variants"][0]["id"], "quantity": 1} for node in nodes]},
    )
    ids = {
        "product": nodes[0]["id"],
        "slug": nodes[0]["slug"],
        "variant": nodes[0]["variants"][0]["id"],
        "category": nodes[0]["category"]["id"],
        "category_slug": nodes[0]["category"]["slug"],
        "cart": made.data["cartCreate"]["cart"]["id"],
    }
    return app, Both(client, context_class, context_class.plans, ids)


@pytest.fixture
async def both(settings: Settings, db: Database, clean: None) -> AsyncIterator[Both]:
    app, opened = await _open(settings)
    try:
        yield opened
    finally:
        await app.__aexit__(None, None, None)


# (a) the bench's documents ------------------------------------------------------------


async def test_every_bench_document_answers_the_same(both: Both) -> None:
    variables = {
        "listing_screen": {"first": 20},
        "product_screen": {"slug": both.ids["slug"]},
        "cart_read": {"id": both.ids["cart"]},
        "search": {"query": "mug", "first": 20},
    }
    ran, mutations = [], []
    for path in sorted((ROOT / "bench" / "queries").glob("*.graphql")):
        document = path.read_text()
        if _operations(parse(document)) == []:
            mutations.append(path.stem)  # mutations never run a plan
            continue
        assert await both.compare(document, variables[path.stem]), f"{path.stem} was not planned"
        ran.append(path.stem)

    assert both.mismatches == []
    assert ran == ["cart_read", "listing_screen", "product_screen", "search"]
    assert mutations == ["cart_lines_add", "checkout_complete"]


# (b) every query document the tests send -----------------------------------------------


def _test_documents() -> Iterator[tuple[str, str]]:
    """(where, text) of every string in tests/ that parses as a GraphQL document with a
    query operation."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        if path == Path(__file__):
            continue  # this file's own documents are the hand-written cases below
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if "{" in text and ("query" in text or text.lstrip().startswith("{")):
                    yield f"{path.relative_to(ROOT)}:{node.lineno}", text
    for path in sorted((ROOT / "tests").rglob("*.graphql")):
        if "node_modules" not in path.parts:
            yield str(path.relative_to(ROOT)), path.read_text()


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        and definition.operation is OperationType.QUERY
    ]


def _named(type_node: TypeNode) -> tuple[str, bool]:
    required = isinstance(type_node, NonNullTypeNode)
    while isinstance(type_node, (NonNullTypeNode, ListTypeNode)):
        type_node = type_node.type
    assert isinstance(type_node, NamedTypeNode)
    return type_node.name.value, required


def infer_variables(operation: OperationDefinitionNode, ids: dict[str, Any]) -> dict[str, Any]:
    """Values for the operation's required variables, from their names and types; raises
    LookupError (with the reason) for one it cannot guess."""
    values: dict[str, Any] = {}
    for definition in operation.variable_definitions or ():
        name = definition.variable.name.value
        type_name, required = _named(definition.type)
        if not required or definition.default_value is not None:
            continue
        lowered = name.lower()
        if isinstance(definition.type, NonNullTypeNode) and isinstance(
            definition.type.type, ListTypeNode
        ):
            raise LookupError(f"list variable ${name}")
        if type_name == "ID":
            for kind in ("cart", "variant", "category", "product"):
                if kind in lowered:
                    values[name] = ids[kind]
                    break
            else:
                if lowered != "id":
                    raise LookupError(f"ID variable ${name}")
                values[name] = ids["product"]
        elif type_name == "String" and "slug" in lowered:
            values[name] = ids["category_slug" if "categ" in lowered else "slug"]
        elif type_name == "String" and lowered in {"query", "q", "text", "term"}:
            values[name] = "mug"
        elif type_name == "Int":
            values[name] = 3
        elif type_name == "Boolean":
            values[name] = True
        else:
            raise LookupError(f"{type_name} variable ${name}")
    return values


async def test_every_query_document_in_the_tests_answers_the_same(both: Both) -> None:
    schema = _graphql_schema(both)
    seen: set[tuple[str, str | None]] = set()
    skipped: Counter[str] = Counter()
    ran = planned = 0
    for _where, text in _test_documents():
        try:
            document = parse(text)
        except GraphQLError:
            continue  # not GraphQL (or deliberately broken: the fuzz and limit tests)
        operations = _operations(document)
        if not operations:
            continue
        if validate(schema, document):
            skipped["invalid against the schema (validation errors are not executed)"] += 1
            continue
        for operation in operations:
            name = operation.name.value if operation.name else None
            if (text, name) in seen:
                continue
            seen.add((text, name))
            try:
                variables = infer_variables(operation, both.ids)
            except LookupError as reason:
                skipped[f"cannot infer a {str(reason).split(' $')[0]}"] += 1
                continue
            ran += 1
            planned += await both.compare(text, variables, name if len(operations) > 1 else None)

    assert both.mismatches == [], "\n\n".join(both.mismatches)
    # The scan must find the tests' documents, and most must go through a plan.
    assert ran >= 40, (ran, skipped)
    assert planned >= ran // 2, (planned, ran, skipped)
    assert both.plans.abandoned == 0


def _graphql_schema(both: Both) -> GraphQLSchema:
    for route in both.client.app.routes:
        schema = getattr(getattr(route, "endpoint", None), "schema", None)
        if schema is not None:
            graphql_schema: GraphQLSchema = schema._schema
            return graphql_schema
    raise AssertionError("no schema")


# (c) generated selections --------------------------------------------------------------


@pytest.fixture
def threaded(settings: Settings, db: Database, clean: None) -> Iterator[tuple[LoopThread, Both]]:
    loop = LoopThread()
    app, opened = loop.run(_open(settings))
    try:
        yield loop, opened
    finally:
        loop.run(app.__aexit__(None, None, None))
        loop.close()


def test_generated_catalog_selections_answer_the_same(
    threaded: tuple[LoopThread, Both],
) -> None:
    """Selections drawn over the catalog's types, under root fields whose arguments
    reach the seeded data; plus hypothesis-graphql's documents (any argument values,
    which mostly reach no data or a coded error)."""
    loop, opened = threaded
    schema = _graphql_schema(opened)
    roots = [
        ("products(first: 4)", "products"),
        (f'product(slug: "{opened.ids["slug"]}")', "product"),
        ("categories(first: 3)", "categories"),
        (f'category(slug: "{opened.ids["category_slug"]}")', "category"),
        ('search(query: "mug", first: 4)', "search"),
    ]
    query_type = schema.query_type
    assert query_type is not None
    sdl = _sdl(opened)
    counts: Counter[str] = Counter()

    @st.composite
    def documents(draw: st.DrawFn) -> str:
        used: set[str] = set()
        root, name = draw(st.sampled_from(roots))
        body = _selection(draw, query_type.fields[name].type, 0, used)
        declared = ", ".join(f"${v}: Boolean!" for v in sorted(used))
        return f"query{f'({declared})' if declared else ''} {{ {root} {body} }}"

    @settings(
        max_examples=GENERATED_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(
        st.one_of(
            documents(),
            documents(),
            st.sampled_from(CATALOG_FIELDS).flatmap(lambda name: queries(sdl, fields=[name])),
        )
    )
    def check(document: str) -> None:
        counts["examples"] += 1
        variables = {v: v == "yes" for v in ("yes", "no") if f"${v}:" in document}
        if loop.run(opened.compare(document, variables, statements=False)):
            counts["planned"] += 1

    check()
    assert opened.mismatches == [], "\n\n".join(opened.mismatches[:5])
    assert counts["examples"] >= GENERATED_EXAMPLES // 2, counts
    assert counts["planned"] >= counts["examples"] // 2, counts
    assert opened.plans.abandoned == 0


def _selection(draw: st.DrawFn, graphql_type: Any, depth: int, used: set[str]) -> str:
    """A random selection set of `graphql_type`: a few of its fields (those whose
    arguments all have defaults), some aliased, some under @include/@skip or an inline
    fragment, with __typename now and then; objects below to a bounded depth."""
    named = get_named_type(graphql_type)
    if not isinstance(named, GraphQLObjectType):
        return "{ __typename }"
    fields = sorted(
        name
        for name, definition in named.fields.items()
        if all(not is_required_argument(a) for a in definition.args.values())
        and (depth < 3 or is_leaf_type(get_named_type(definition.type)))
    )
    if not fields:
        return "{ __typename }"
    chosen = draw(st.lists(st.sampled_from(fields), min_size=1, max_size=5, unique=True))
    parts = []
    for name in chosen:
        field_type = named.fields[name].type
        sub = (
            ""
            if is_leaf_type(get_named_type(field_type))
            else _selection(draw, field_type, depth + 1, used)
        )
        alias = draw(st.sampled_from(["", "", f"{name}Alias: "]))
        directive = draw(
            st.sampled_from(["", "", "", "@include(if: $yes)", "@skip(if: $no)", "@skip(if: $yes)"])
        )
        if directive:
            used.add("yes" if "$yes" in directive else "no")
        part = f"{alias}{name} {directive} {sub}"
        if draw(st.integers(0, 5)) == 0:
            part = f"... on {named.name} {{ {part} }}"
        parts.append(part)
    if draw(st.integers(0, 3)) == 0:
        parts.insert(draw(st.integers(0, len(parts))), "__typename")
    return "{ " + " ".join(parts) + " }"


def _sdl(both: Both) -> str:
    for route in both.client.app.routes:
        schema = getattr(getattr(route, "endpoint", None), "schema", None)
        if schema is not None:
            sdl: str = schema.as_str()
            return sdl
    raise AssertionError("no schema")


# (d) the cases by hand ------------------------------------------------------------------

FRAGMENTS = """
query Screen($first: Int!, $withVariants: Boolean!, $noImages: Boolean!) {
  __typename
  list: products(first: $first) {
    __typename
    edges {
      node {
        ...Card
        id
        kind: __typename
        variants @include(if: $withVariants) { sku price { ...Price } }
        images @skip(if: $noImages) { url }
        ... on Product { ratingSummary { average count } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
  again: products(first: 1) { edges { node { t: title } } }
}
fragment Card on Product { title brand category { name parent { name } } }
fragment Price on Money { amount currencyCode }
"""


async def test_hand_written_cases_answer_the_same(both: Both) -> None:
    slug = both.ids["slug"]
    cases: list[tuple[str, dict[str, Any]]] = [
        (FRAGMENTS, {"first": 4, "withVariants": True, "noImages": False}),
        (FRAGMENTS, {"first": 4, "withVariants": False, "noImages": True}),
        (FRAGMENTS, {"first": 0, "withVariants": True, "noImages": True}),
        # nulls: a product that does not exist, a category without a parent
        ('{ product(slug: "no-such-product") { title } }', {}),
        (
            "query($s: String!) { category(slug: $s) { name parent { name } "
            "products(first: 2) { edges { node { title } } } } }",
            {"s": both.ids["category_slug"]},
        ),
        # a coded error under a nullable parent: product is null, the rest stays
        (
            "query($s: String) { a: products(first: 2) { edges { node { title } } } "
            'b: product(slug: $s) { title reviews(after: "not-a-cursor") { edges { cursor } } } }',
            {"s": slug},
        ),
        # argument values from variables, coerced per request, and refused by a resolver
        ("query($n: Int) { products(first: $n) { edges { node { title } } } }", {"n": 2}),
        ("query($n: Int) { products(first: $n) { edges { node { title } } } }", {"n": 101}),
        ("query($n: Int) { products(first: $n) { edges { node { title } } } }", {"n": -1}),
        # nested lists with resolvers below: reviews and related per product
        (
            "query($s: String!) { product(slug: $s) { related(first: 3) { title "
            "variants { sku selectedOptions { name value } } images { url } } "
            "reviews(first: 2) { edges { node { rating title } } } } }",
            {"s": slug},
        ),
        (
            "{ categories(first: 3) { edges { node { name products(first: 2) "
            "{ edges { node { title variants { quantityAvailable } } } } } } } }",
            {},
        ),
        # the cart, with its lines' merchandise and costs
        (
            "query($id: ID!) { cart(id: $id) { id lines { quantity merchandise "
            "{ sku product { title } } cost { subtotalAmount { amount } } } } }",
            {"id": both.ids["cart"]},
        ),
    ]
    for document, variables in cases:
        assert await both.compare(document, variables), f"not planned: {document}"
    # A coded error in a non-null root field: no data at all. Its sibling is cancelled
    # mid-flight (by graphql-core's rules, on both paths), so whether the sibling's first
    # statement went out first is a race: only the bodies are compared.
    assert await both.compare(
        "{ a: products(first: 2) { edges { node { title } } } "
        'b: products(after: "not-a-cursor") { edges { cursor } } }',
        statements=False,
    )

    assert both.mismatches == [], "\n\n".join(both.mismatches)
    assert both.plans.abandoned == 0


async def test_documents_a_plan_does_not_cover_run_on_the_executor(both: Both) -> None:
    # Interfaces (node), introspection and mutations are never planned; they answer as before.
    product = both.ids["product"]
    for document, variables in [
        ("query($id: ID!) { node(id: $id) { id ... on Product { title } } }", {"id": product}),
        ("{ __schema { queryType { name } } }", {}),
        ('{ __type(name: "Product") { name } products(first: 1) { edges { cursor } } }', {}),
    ]:
        assert not await both.compare(document, variables), document
    assert both.mismatches == []
    executed = both.plans.executed
    response = await both.client.query(
        "mutation { cartCreate(input: {lines: []}) { cart { id } userErrors { code } } }"
    )
    assert response.status == 200 and "cartCreate" in response.data
    assert both.plans.executed == executed
