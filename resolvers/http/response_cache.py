"""The response cache at the HTTP edge, as a mixin for the GraphQL view (outermost).

A GET that names a persisted document by hash (`extensions.persistedQuery`, no `query`),
sent without `Authorization` or `X-Api-Key`, with at most small `variables` and an
`operationName`, is a candidate: its key is looked up before anything else runs (this
process's layer, then Redis). A hit is answered from the stored body: no parse, no rate
limit, no SQL. A miss runs as usual; its answer is kept when the request state says it
is public catalog data (`ResponseScope`: a query of catalog root fields only) with no
errors, nothing degraded and nothing private, and the body is small enough.

Kept answers carry `ETag` (a hash of the body; a matching `If-None-Match` gets 304),
`Cache-Control: public, max-age=N`, and their tags in `Surrogate-Key` (space-separated,
Fastly) and `Cache-Tag` (comma-separated, Cloudflare), so a CDN can purge by the tags
the event consumers purge by. The per-client `throttleStatus` is left out of such
answers: one body is served to everyone.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from domain.response_cache import (
    CachedResponse,
    ResponseCache,
    ResponseHit,
    ResponseMiss,
    etag_matches,
    response_key,
)
from resolvers.http.exchange import AnswerHooks
from resolvers.http.graphql_over_http import GRAPHQL_RESPONSE, prefers_graphql_response
from schema.request_state import RequestState

MAX_VARIABLES_BYTES = 4_096  # larger variables run uncached
MAX_EXTENSIONS_BYTES = 512
MAX_OPERATION_NAME = 128
CANDIDATE_PARAMETERS = frozenset({"extensions", "variables", "operationName"})
_SHA256 = re.compile(r"[0-9a-f]{64}")


def response_fingerprint(schema_sdl: str, *parts: object) -> str:
    """What else changes an answer: the schema (a release with other fields or
    resolvers) and the settings passed in (currency, policies, the namespace)."""
    digest = hashlib.sha256(schema_sdl.encode())
    for part in parts:
        digest.update(b"\x00" + repr(part).encode())
    return digest.hexdigest()[:16]


def candidate_key(request: Any, fingerprint: str) -> str | None:
    """The cache key of a cacheable request, None for any other (which runs as usual)."""
    if request.method != "GET":
        return None
    headers = request.headers
    if "authorization" in headers or "x-api-key" in headers:
        return None
    items = request.query_params.multi_items()
    names = {name for name, _ in items}
    if len(names) != len(items) or not names <= CANDIDATE_PARAMETERS:
        return None  # a `query`, a repeated or an unknown parameter
    params = dict(items)
    document_hash = _persisted_hash(params.get("extensions"))
    if document_hash is None:
        return None
    variables = _canonical_variables(params.get("variables"))
    if variables is None:
        return None
    operation = params.get("operationName")
    if operation is not None and not 0 < len(operation) <= MAX_OPERATION_NAME:
        return None
    return response_key(fingerprint, document_hash, operation, variables)


def _persisted_hash(raw: str | None) -> str | None:
    if raw is None or len(raw) > MAX_EXTENSIONS_BYTES:
        return None
    try:
        extensions = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(extensions, dict) or extensions.keys() != {"persistedQuery"}:
        return None
    persisted = extensions["persistedQuery"]
    if not isinstance(persisted, dict) or persisted.get("version") != 1:
        return None
    sha256_hash = persisted.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not _SHA256.fullmatch(sha256_hash):
        return None
    return sha256_hash


def _canonical_variables(raw: str | None) -> bytes | None:
    """Sorted keys at every depth: the same variables in another order are one entry."""
    if raw is None:
        return b"{}"
    if len(raw) > MAX_VARIABLES_BYTES:
        return None
    try:
        variables = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if variables is None:
        return b"{}"
    if not isinstance(variables, dict):
        return None  # the request is refused as usual, and not cached
    return orjson.dumps(variables, option=orjson.OPT_SORT_KEYS)


class ResponseCacheHttp(AnswerHooks):
    public_max_age: int = 60
    response_cache_fingerprint: str = ""

    def response_cache(self) -> ResponseCache | None:
        """The running app's response cache; None when RESPONSE_CACHE_ENABLED is off."""
        raise NotImplementedError

    async def cached_answer(self, request: Any) -> Response | None:
        """The view's first hook: a hit is the answer; a miss is remembered on the
        request state for `answered`, which keeps the answer when it may be kept."""
        cache = self.response_cache()
        key = None if cache is None else candidate_key(request, self.response_cache_fingerprint)
        if cache is None or key is None:
            return None
        found = await cache.look_up(key)
        if isinstance(found, ResponseHit):
            return self._answer(request, found.response)
        RequestState.of(request).response_miss = found
        return None

    async def answered(self, request: Any, response: Any) -> None:
        """The view's last hook: every final answer passes here once."""
        cache = self.response_cache()
        miss = RequestState.of(request).response_miss
        if cache is not None and miss is not None:
            await self._keep(request, cache, miss, response)

    async def process_result(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        data: GraphQLHTTPResponse = await super().process_result(request, result)  # type: ignore[misc]
        state = RequestState.of(request)
        if state.response_tags is not None and state.publicly_cacheable:
            cost = (data.get("extensions") or {}).get("cost")
            if isinstance(cost, dict):
                cost.pop("throttleStatus", None)  # whose bucket: not everyone's answer
        return data

    def _answer(self, request: Any, cached: CachedResponse) -> Response:
        headers = self._headers(cached)
        headers["x-response-cache"] = "hit"
        if etag_matches(request.headers.get("if-none-match"), cached.etag):
            return Response(b"", status_code=304, headers=headers)
        media = GRAPHQL_RESPONSE if prefers_graphql_response(request) else "application/json"
        headers["content-type"] = (
            f"{GRAPHQL_RESPONSE}; charset=utf-8" if media == GRAPHQL_RESPONSE else media
        )
        return Response(cached.body, status_code=200, headers=headers)

    def _headers(self, cached: CachedResponse) -> dict[str, str]:
        return {
            "cache-control": f"public, max-age={self.public_max_age}",
            "etag": cached.etag,
            "surrogate-key": " ".join(cached.tags),
            "cache-tag": ",".join(cached.tags),
        }

    async def _keep(
        self, request: Any, cache: ResponseCache, miss: ResponseMiss, response: Any
    ) -> None:
        state = RequestState.of(request)
        tags = state.response_tags
        body = getattr(response, "body", None)
        if (
            tags is None
            or not isinstance(body, bytes)
            or response.status_code != 200  # a 304 has no body to keep; errors never
            or not state.publicly_cacheable
            or state.never_executed
            or state.search_report is not None
            or not response.headers.get("cache-control", "").startswith("public")
            or b'"userErrors":[{' in body
            or not cache.fits(body)
        ):
            return
        cached = CachedResponse.of(body, tags.tags())
        if response.headers.get("etag") != cached.etag:
            return  # not the body the edge validated: keep nothing rather than guess
        response.headers.update(self._headers(cached))
        response.headers["x-response-cache"] = "miss"
        await cache.keep(miss, cached)
