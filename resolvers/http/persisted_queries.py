"""The HTTP side of persisted queries and partner keys, as a mixin for the GraphQL view.

- `X-Api-Key`: a partner's key; unknown or revoked → 401 before anything else runs.
- Before a request's document is parsed, `extensions.persistedQuery` is resolved to the
  document it names (APQ store or the client's manifest); a persisted-only client's
  free-form query is refused here, unparsed. Each operation of a batch resolves alone.
- A newly sent APQ document is stored only once it parsed and validated, so the store
  never fills with junk.
- A `query` over `MAX_QUERY_BYTES` is refused before anything else looks at it
  (QUERY_TOO_LARGE, HTTP 413): it is never parsed, cached or registered.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from graphql import GraphQLError
from starlette.responses import JSONResponse
from strawberry.types import ExecutionResult

from domain.partners import Partner
from domain.persisted_queries import PersistedQueryError
from schema.context import Context
from schema.request_state import RequestState

UNUSABLE_DOCUMENT = frozenset({"GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"})


class PartnerKeys(Protocol):
    async def authenticate(self, api_key: str) -> Partner | None: ...


class PersistedQueryHttp:
    def partner_keys(self) -> PartnerKeys:
        """Where X-Api-Key values are checked: the view create_app builds says."""
        raise NotImplementedError

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        api_key = request.headers.get("x-api-key")
        if api_key is not None:
            partner = await self.partner_keys().authenticate(api_key)
            if partner is None:
                return JSONResponse(
                    {
                        "errors": [
                            {
                                "message": "unknown or revoked API key",
                                "extensions": {"code": "UNAUTHENTICATED"},
                            }
                        ]
                    },
                    status_code=401,
                    headers={"WWW-Authenticate": 'ApiKey header="X-Api-Key"'},
                )
            RequestState.of(request).partner = partner
        return await super().run(request, context, root_value)  # type: ignore[misc]

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET that names a persisted query has no `query` parameter either. (The
        # query string is read only for a GET: strawberry's test looks at the method first.)
        ide: bool = super().should_render_graphql_ide(request)  # type: ignore[misc]
        return ide and "extensions" not in request.query_params

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        result = await self._execute_resolved(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        if result.errors:
            context.state.had_errors = True  # for the request's metrics and log line
        return result

    async def _execute_resolved(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: Any,
        request_data: Any,
    ) -> ExecutionResult:
        too_large = _size_refusal(request_data.query, context.settings.max_query_bytes)
        if too_large is not None:
            sub_response.status_code = 413
            return ExecutionResult(data=None, errors=[too_large])
        try:
            resolved = await context.documents.resolve(
                request_data.query, request_data.extensions, context.document_policy
            )
        except PersistedQueryError as refused:
            error = GraphQLError(refused.message, extensions={"code": refused.code})
            return ExecutionResult(data=None, errors=[error])
        if resolved.trusted:
            context.state.trusted_document = True
        if resolved.query is not request_data.query:
            request_data = dataclasses.replace(request_data, query=resolved.query)
        result: ExecutionResult = await super().execute_single(  # type: ignore[misc]
            request, request_adapter, sub_response, context, root_value, request_data
        )
        if (
            resolved.register
            and resolved.query is not None  # always, when register: the document sent
            and not any(
                (e.extensions or {}).get("code") in UNUSABLE_DOCUMENT for e in result.errors or ()
            )
            and await _pay_for_storage(context, resolved.query)
        ):
            await context.documents.register(resolved.query)
        return result


async def _pay_for_storage(context: Context, query: str) -> bool:
    """Storing a document for a week is paid from the client's bucket: one point per
    started kilobyte, on top of what running it cost. A document of no query cost (a
    `{ __typename }` padded to the size limit) can then only be registered as fast as the
    bucket refills, so no client can grow the store faster than its rate limit. An empty
    bucket leaves the document unstored (the query already ran); the client resends it."""
    limiter = context.rate_limiter
    if limiter is None:
        return True
    points = -(-len(query.encode()) // 1024)
    decision = await limiter.take(await context.rate_limit_key(), points, context.rate_limit)
    return bool(decision.allowed)


def _size_refusal(query: str | None, max_bytes: int) -> GraphQLError | None:
    # Four bytes a character at most: most queries are cleared without encoding them.
    if query is None or len(query) * 4 <= max_bytes or len(query.encode()) <= max_bytes:
        return None
    return GraphQLError(
        f"the query is larger than {max_bytes} bytes; send a smaller document",
        extensions={"code": "QUERY_TOO_LARGE", "maximum": max_bytes},
    )
