"""GraphQL over HTTP, as graphql.org's spec says, on top of strawberry's view.

- `application/graphql-response+json` when the client accepts it (else
  `application/json`); under it, a document that never executed (parse or validation
  failure, too deep, too costly) is a 400 without a `data` entry.
- A POST body in another media type: 415. A mutation over GET: 405.
- A request that is not a GraphQL request (see request_body.py), or that this edge or
  strawberry refuses before running it (400, 404, 405, 415): a GraphQL error body with
  a code (BAD_REQUEST, NOT_FOUND, METHOD_NOT_ALLOWED, UNSUPPORTED_MEDIA_TYPE), never
  plain text.
- GET answers that show only public catalog data: `Cache-Control: public, max-age=N`
  and an `ETag` (a matching `If-None-Match` gets 304); anything else (errors, private
  data, a degraded answer): `private, no-store`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cross_web import HTTPException as StrawberryHTTPException
from starlette.responses import JSONResponse
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from schema.request_state import RequestState

GRAPHQL_RESPONSE = "application/graphql-response+json"
ACCEPTED_BODIES = {"application/json", GRAPHQL_RESPONSE, "application/graphql"}
HTTP_ERROR_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def prefers_graphql_response(request: Any) -> bool:
    return GRAPHQL_RESPONSE in request.headers.get("accept", "")


class GraphQLOverHttp:
    """A mixin for the strawberry ASGI view; `public_max_age` comes from settings."""

    public_max_age: int = 60

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        if request.method == "POST":
            media = request.headers.get("content-type", "").split(";")[0].strip().lower()
            if media and media not in ACCEPTED_BODIES and not media.startswith("multipart/"):
                reason = f"unsupported media type {media}; send application/json"
                return refused_request(request, 415, reason)
        try:
            if context is None:
                response = await super().run(request)  # type: ignore[misc]
            else:
                response = await super().run(request, context, root_value)  # type: ignore[misc]
        except StrawberryHTTPException as error:
            if "not allowed when using GET" in error.reason:
                return refused_request(request, 405, "mutations need POST", {"Allow": "POST"})
            return refused_request(request, error.status_code, error.reason)
        if not hasattr(response, "body"):
            return response
        state = RequestState.of(request)
        unexecuted = state.never_executed
        if prefers_graphql_response(request):
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
            if unexecuted and response.status_code == 200:
                response.status_code = 400
        self._cache_headers(request, response, state)
        return response

    def _cache_headers(self, request: Any, response: Any, state: RequestState) -> None:
        public = (
            request.method == "GET"
            and response.status_code == 200
            and not state.never_executed
            and state.publicly_cacheable
            and "authorization" not in request.headers
        )
        if not public:
            response.headers["cache-control"] = "private, no-store"
            return
        etag = '"' + hashlib.sha256(response.body).hexdigest()[:32] + '"'
        response.headers["cache-control"] = f"public, max-age={self.public_max_age}"
        response.headers["etag"] = etag
        if request.headers.get("if-none-match") == etag:
            response.status_code = 304
            response.body = b""
            response.headers["content-length"] = "0"

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data = process_result(result)
        errors = result.errors or []
        unexecuted = result.data is None and bool(errors) and all(e.path is None for e in errors)
        state = RequestState.of(request)
        state.never_executed = unexecuted
        # A degraded answer (an optional part failed) must not stay in a CDN for max-age.
        degraded = "degraded" in (result.extensions or {})
        state.publicly_cacheable = not (state.private_data or errors or degraded)
        if unexecuted and prefers_graphql_response(request):
            data.pop("data", None)  # the spec: no data entry for a request that never ran
        return data


def refused_request(
    request: Any, status: int, reason: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A request that never ran, as a GraphQL error body with a code (and no `data`)."""
    code = HTTP_ERROR_CODES.get(status, "BAD_REQUEST")
    media = GRAPHQL_RESPONSE if prefers_graphql_response(request) else "application/json"
    return JSONResponse(
        {"errors": [{"message": reason, "extensions": {"code": code}}]},
        status_code=status,
        media_type=media,
        headers={"cache-control": "private, no-store", **(headers or {})},
    )
