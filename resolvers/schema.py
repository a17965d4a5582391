"""The executable schema: root types plus the extensions every request runs through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule, specified_rules
from opentelemetry.trace import Tracer
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.extensions.query_depth_limiter import create_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule
from strawberry.types import ExecutionContext

from domain.text_input import DEFAULT_MAX_STRING_LENGTH
from resolvers.account_changes import AccountChangeMutation
from resolvers.addresses import AddressBookMutation
from resolvers.carts import CartMutation, CartQuery
from resolvers.catalog import CatalogQuery
from resolvers.catalog_admin import CatalogAdminMutation
from resolvers.checkout import CheckoutMutation, OrderQuery
from resolvers.customers import CustomerMutation, CustomerQuery
from resolvers.discounts import DiscountMutation, DiscountQuery
from resolvers.extensions.compiled import PlanCache
from resolvers.extensions.cost import CostCache, QueryCost
from resolvers.extensions.current_reads import MutationsReadCurrent
from resolvers.extensions.degraded_report import DegradedReport
from resolvers.extensions.documents import CheckedDocuments, DocumentCache, RuleGroup
from resolvers.extensions.errors import ErrorPolicy
from resolvers.extensions.execution import plain_data_context
from resolvers.extensions.input_guard import InputGuard
from resolvers.extensions.lifecycle import ReleaseRequestState
from resolvers.extensions.response_scope import ResponseScope
from resolvers.extensions.search_report import SearchReport
from resolvers.extensions.tracing import OperationTracing
from resolvers.gift_cards import GiftCardMutation, GiftCardQuery
from resolvers.refunds import RefundMutation
from resolvers.reviews import ReviewMutation
from resolvers.search import SearchQuery
from resolvers.shipping_admin import ShippingAdminMutation
from resolvers.subscriptions import Subscription
from resolvers.webhooks import WebhookQuery
from schema.addresses import CustomerAddress
from schema.catalog import Category, Product, ProductVariant, Review
from schema.customers import Customer

DOCUMENT_CACHE_BYTES = 64 * 1024 * 1024


@strawberry.type
class Query(
    CatalogQuery,
    CustomerQuery,
    CartQuery,
    OrderQuery,
    SearchQuery,
    DiscountQuery,
    GiftCardQuery,
    WebhookQuery,
):
    pass


@strawberry.type
class Mutation(
    CustomerMutation,
    AddressBookMutation,
    AccountChangeMutation,
    CartMutation,
    CheckoutMutation,
    ReviewMutation,
    CatalogAdminMutation,
    ShippingAdminMutation,
    GiftCardMutation,
    DiscountMutation,
    RefundMutation,
):
    pass


class CommerceSchema(strawberry.Schema):
    hide_suggestions: bool = False
    documents: DocumentCache | None = None  # parsed and validated documents, by text

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # ErrorPolicy logs what deserves a log (unexpected errors, with their trace);
        # client mistakes are not server errors and would only drown them.
        return None

    def _get_custom_context_kwargs(
        self, operation_extensions: dict[str, Any] | None = None, *, sync: bool = False
    ) -> dict[str, Any]:
        # graphql-core's execute() takes this switch for variable coercion errors
        # ("Did you mean the enum value ...?"); strawberry has no setting for it.
        kwargs = super()._get_custom_context_kwargs(operation_extensions, sync=sync)
        kwargs["hide_suggestions"] = self.hide_suggestions
        return kwargs


def build_schema(
    *,
    max_depth: int = 15,
    max_aliases: int = 30,
    max_tokens: int = 10_000,
    introspection: bool = True,
    batch_max: int = 0,
    max_cost: int = 1_000,
    expose_error_details: bool = False,
    max_string_length: int = DEFAULT_MAX_STRING_LENGTH,
    document_cache_bytes: int = DOCUMENT_CACHE_BYTES,
    tracer: Tracer | None = None,
    read_replica: bool = False,
    backend_unavailable: Callable[[BaseException], bool] | None = None,
    compiled: bool = True,
) -> strawberry.Schema:
    """The schema and its per-request extensions. Without introspection (production),
    errors carry no suggestions either: both would describe the schema. With a
    `read_replica`, mutations read the primary. `compiled` runs queries through plans
    made once per document (off only to compare with the ordinary executor)."""
    # Rule classes made once for the schema's life (QueryDepthLimiter would make a new
    # class per instance); each group tags its own errors with its code.
    rule_groups = [
        RuleGroup(
            "GRAPHQL_VALIDATION_FAILED",
            (*specified_rules, MaybeNullValidationRule, OneOfInputValidationRule),
        ),
        RuleGroup("MAX_DEPTH_EXCEEDED", (create_validator(max_depth, None, None),)),
        RuleGroup("MAX_ALIASES_EXCEEDED", (alias_rule(max_aliases),)),
    ]
    if not introspection:
        rule_groups.append(RuleGroup("INTROSPECTION_DISABLED", (NoSchemaIntrospectionCustomRule,)))
    documents = DocumentCache(max_bytes=document_cache_bytes)
    costs = CostCache()
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: CheckedDocuments(
            cache=documents,
            rule_groups=rule_groups,
            max_tokens=max_tokens,
            hide_suggestions=not introspection,
        ),
        lambda: ErrorPolicy(
            expose_details=expose_error_details, backend_unavailable=backend_unavailable
        ),
        # Refuses bad strings before QueryCost, which still charges the refused request.
        lambda: InputGuard(documents=documents, max_length=max_string_length),
        lambda: QueryCost(maximum=max_cost, cache=costs),
        ReleaseRequestState,
        ResponseScope,
        SearchReport,
        DegradedReport,
    ]
    if tracer is not None:
        # First, so its span encloses the others and ends after QueryCost has said
        # what ran.
        extensions.insert(0, lambda: OperationTracing(tracer=tracer))
    if read_replica:
        extensions.append(MutationsReadCurrent)
    config = StrawberryConfig(batching_config={"max_operations": batch_max} if batch_max else None)
    types: list[Any] = [Product, ProductVariant, Category, Review, Customer, CustomerAddress]
    schema = CommerceSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        types=types,
        config=config,
    )
    schema.hide_suggestions = not introspection
    schema.documents = documents
    schema.execution_context_class = plain_data_context(
        schema._schema, PlanCache() if compiled else None
    )
    return schema
