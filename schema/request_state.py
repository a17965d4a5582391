"""What the parts of one HTTP request tell each other, in one typed place.

The HTTP edge, the schema extensions and the resolvers run at different depths of one
request and never call each other: the partner key check learns who is calling, a
resolver learns the answer holds someone's data, the view decides cache headers from
both. They meet here, in one `RequestState` kept on the ASGI scope, instead of in
untyped `request.state` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import Scope

from domain.partners import Partner
from domain.response_cache import ResponseMiss, ResponseTags

# The ASGI scope key; a scope (not a Request object) because strawberry and Starlette
# each build their own Request around the same scope.
_SCOPE_KEY = "commerce.request_state"


@dataclass(slots=True)
class RequestState:
    # Set by the X-Api-Key check before anything runs; None for everyone else.
    partner: Partner | None = None
    # A resolver showed someone's data (a cart, an order, the viewer): never cache it.
    private_data: bool = False
    # `extensions.search` of a response where a search ran: who answered, and why not
    # the configured engine.
    search_report: dict[str, str | None] | None = None
    # The document never executed (parse or validation failure, too deep, too costly).
    never_executed: bool = False
    # The answer may be kept by a CDN: public data only, no errors, nothing degraded.
    # False until the result says otherwise.
    publicly_cacheable: bool = False
    # What ran, for traces, metrics and the request log (set by QueryCost, which sees
    # the parsed operation): its name as the client sent it (None when anonymous), its
    # type ("query", "mutation"), its static cost, and whether the rate limit refused it.
    operation_name: str | None = None
    operation_type: str | None = None
    query_cost: int | None = None
    throttled: bool = False
    # For the request's metrics and log line (read by the HTTP middleware once the
    # answer is out): the document came from a trusted manifest; the answer had
    # top-level errors; the ids of masked errors; the reasons of degraded fields; what
    # each checkoutComplete ended in (an order status or a userError code).
    trusted_document: bool = False
    had_errors: bool = False
    error_ids: list[str] | None = None
    degraded_reasons: frozenset[str] = frozenset()
    checkout_outcomes: list[str] | None = None
    # Redis failed where nothing stands in for it (sessions, carts): SERVICE_UNAVAILABLE.
    service_unavailable: bool = False
    # An anonymous GET of catalog root fields only: what its answer was built from, for
    # the response cache (resolvers/extensions/response_scope.py); None for the rest.
    response_tags: ResponseTags | None = None
    # A cacheable request the cache did not hold: where its answer goes once it exists.
    response_miss: ResponseMiss | None = None

    @classmethod
    def of(cls, connection: HTTPConnection) -> RequestState:
        """This request's state, made on first use (the only place one is made)."""
        scope = connection.scope
        state: RequestState | None = scope.get(_SCOPE_KEY)
        if state is None:
            state = scope[_SCOPE_KEY] = cls()
        return state

    def record_checkout(self, outcome: str) -> None:
        if self.checkout_outcomes is None:
            self.checkout_outcomes = [outcome]
        else:
            self.checkout_outcomes.append(outcome)

    @classmethod
    def found_in(cls, scope: Scope) -> RequestState | None:
        """The state a request made, if it made one (for the middleware, afterwards)."""
        state: RequestState | None = scope.get(_SCOPE_KEY)
        return state
