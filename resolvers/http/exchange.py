"""One GraphQL request over plain HTTP, with less of strawberry's generality on the way.

strawberry's `run` serves every transport it knows: WebSockets, multipart uploads, SSE
and multipart subscriptions, incremental delivery. This API serves WebSockets (handed
to strawberry untouched) and JSON over GET and POST; for those, `DirectHttp` runs the
same steps through the same hooks (`get_context`, `should_render_graphql_ide`,
`parse_http_body`, `execute_operation`, `process_result`, `create_response`, which the
other mixins override), without what only the other transports need: the content-type
parse through `email.message`, the stream-transport look-up in `Accept`, the
runtime-protocol `isinstance` on every result, a sub-response built and then trimmed.
A view configured with a stream transport or multipart uploads gets strawberry's `run`.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.types import ExecutionResult
from strawberry.types.unset import UNSET


class AnswerHooks:
    """Where an answer can come from somewhere other than execution, and where every
    HTTP answer passes once it is final (status, body and cache headers set). The
    GraphQL view calls both around its HTTP mixins, for GET and POST alike; a response
    cache for public reads overrides them (and nothing else in the view):

    - `cached_answer` runs first, before the partner key check, the Context, the body
      parse and execution; a response it returns is the answer (the middlewares still
      add X-Request-Id, count it and log it).
    - `answered` sees the final response and the request's `RequestState` (publicly
      cacheable or not, private data, errors, what ran).
    """

    async def cached_answer(self, request: Request) -> Response | None:
        return None

    async def answered(self, request: Request, response: Response) -> None:
        return None


class DirectHttp:
    """A mixin for strawberry's ASGI view, placed right above it."""

    async def run(self, request: Any, context: Any = UNSET, root_value: Any = UNSET) -> Any:
        view: Any = self  # the strawberry view this mixes into
        if (
            view.is_websocket_request(request)
            or view.multipart_uploads_enabled
            or view._stream_transport_map  # strawberry's own, configured once
        ):
            return await super().run(request, context, root_value)  # type: ignore[misc]
        if root_value is UNSET:
            root_value = await view.get_root_value(request)
        request_adapter = view.request_adapter_class(request)
        sub_response = await view.get_sub_response(request)
        if context is UNSET:
            context = await view.get_context(request, response=sub_response)
        if not view.is_request_allowed(request_adapter):
            raise HTTPException(405, "GraphQL only supports GET and POST requests.")
        if view.should_render_graphql_ide(request_adapter):
            if view.graphql_ide:
                return await view.render_graphql_ide(request)
            raise HTTPException(404, "Not Found")
        try:
            request_data = await view.parse_http_body(request_adapter)
        except json.JSONDecodeError as error:
            raise HTTPException(400, "Unable to parse request body as JSON") from error
        result = await view.execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse]
        if isinstance(result, list):
            response_data = [await self._processed(request, one) for one in result]
        elif isinstance(result, ExecutionResult):
            response_data = await self._processed(request, result)
        else:  # a stream: only a stream transport (handed to strawberry above) makes one
            raise HTTPException(400, "this operation cannot be answered over plain HTTP")
        return view.create_response(response_data=response_data, sub_response=sub_response)

    async def _processed(self, request: Any, result: ExecutionResult) -> GraphQLHTTPResponse:
        view: Any = self
        processed: GraphQLHTTPResponse = await view.process_result(request=request, result=result)
        if result.errors:
            view._handle_errors(result.errors, processed)  # a hook (Sentry's), a no-op here
        return processed

    async def get_sub_response(self, request: Any) -> Response:
        # What resolvers and extensions set a status or headers on; strawberry's makes a
        # Response and deletes the Content-Length it computed for an empty body.
        sub_response = Response.__new__(Response)
        sub_response.status_code = None  # type: ignore[assignment]  # None: not set
        sub_response.background = None
        sub_response.body = b""
        sub_response.raw_headers = []
        return sub_response

    async def parse_http_body(self, request: Any) -> GraphQLRequestData | list[GraphQLRequestData]:
        view: Any = self
        if view.multipart_uploads_enabled or view._stream_transport_map:
            return await super().parse_http_body(request)  # type: ignore[misc, no-any-return]
        if request.method == "GET":
            data = view.parse_query_params(request.query_params)
        else:
            # The media type as strawberry reads it: before any parameter, case kept.
            media = (request.content_type or "").split(";", 1)[0].strip()
            if "application/json" not in media:
                raise HTTPException(400, "Unsupported content type")
            data = view.parse_json(await request.get_body())
        if isinstance(data, list):
            view._validate_batch_request(data, protocol="http")
            return [_request_data(item) for item in data]
        return _request_data(data)

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        view: Any = self
        response = Response(
            view.encode_json(response_data),
            status_code=sub_response.status_code or 200,
            media_type="application/json",
        )
        if sub_response.raw_headers:
            response.raw_headers.extend(sub_response.raw_headers)
        if sub_response.background:
            response.background = sub_response.background
        return response


def _request_data(data: dict[str, Any]) -> GraphQLRequestData:
    # WellFormedRequests' parse_json checked a POST's members; a GET's come from
    # parse_query_params (variables and extensions objects, the rest strings).
    query = data.get("query")
    if not isinstance(query, (str, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `query` must be a string or null, if provided."
        )
    variables = data.get("variables")
    if not isinstance(variables, (dict, type(None))):
        raise HTTPException(
            400, "The GraphQL operation's `variables` must be an object or null, if provided."
        )
    extensions = data.get("extensions")
    if not isinstance(extensions, (dict, type(None))):
        raise HTTPException(
            400,
            "The GraphQL operation's `extensions` must be an object or null, if provided.",
        )
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=data.get("operationName"),
        extensions=extensions,
        protocol="http",
    )
