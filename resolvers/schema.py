"""The executable schema: root types plus the extensions every request runs through."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from resolvers.carts import CartMutation, CartQuery
from resolvers.catalog import CatalogQuery
from resolvers.catalog_admin import CatalogAdminMutation
from resolvers.checkout import CheckoutMutation, OrderQuery
from resolvers.cost import CostCache, QueryCost
from resolvers.customers import CustomerMutation, CustomerQuery
from resolvers.errors import ErrorPolicy
from resolvers.execution import plain_data_context
from resolvers.lifecycle import ReleaseRequestState
from resolvers.reviews import ReviewMutation
from resolvers.search import SearchQuery
from resolvers.search_report import SearchReport
from schema.catalog import Category, Product, ProductVariant, Review
from schema.customers import Customer

PARSE_CACHE_SIZE = 1024


@strawberry.type
class Query(CatalogQuery, CustomerQuery, CartQuery, OrderQuery, SearchQuery):
    pass


@strawberry.type
class Mutation(
    CustomerMutation, CartMutation, CheckoutMutation, ReviewMutation, CatalogAdminMutation
):
    pass


class CachedParser(ParserCache):
    """ParserCache whose syntax errors stay inside the operation.

    Stock ParserCache raises from its hook, which skips every `on_operation`
    (so ErrorPolicy never sees the error); leaving the document unset lets
    strawberry's own parse report it the ordinary way.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


class CommerceSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorPolicy logs what deserves a log (unexpected errors, with their trace);
        # client mistakes are not server errors and would only drown them.
        return None


def build_schema(
    *,
    max_depth: int = 15,
    max_aliases: int = 30,
    max_tokens: int = 10_000,
    introspection: bool = True,
    batch_max: int = 0,
    max_cost: int = 1_000,
    expose_error_details: bool = False,
) -> strawberry.Schema:
    # One rule class for the schema's life: QueryDepthLimiter makes a new class per
    # instance, which changes the validation cache's key and re-validates every request.
    rules = [create_validator(max_depth, None, None), alias_rule(max_aliases)]
    costs = CostCache()
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: CachedParser(maxsize=PARSE_CACHE_SIZE),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=PARSE_CACHE_SIZE),
        lambda: ErrorPolicy(expose_details=expose_error_details),
        lambda: QueryCost(maximum=max_cost, cache=costs),
        ReleaseRequestState,
        SearchReport,
    ]
    if not introspection:
        extensions.append(DisableIntrospection)
    config = StrawberryConfig(batching_config={"max_operations": batch_max} if batch_max else None)
    types: list[Any] = [Product, ProductVariant, Category, Review, Customer]
    schema = CommerceSchema(
        query=Query, mutation=Mutation, extensions=extensions, types=types, config=config
    )
    schema.execution_context_class = plain_data_context(schema._schema)
    return schema
