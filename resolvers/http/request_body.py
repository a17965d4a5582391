"""What a GraphQL request over HTTP must look like before anything reads it.

A POST body is a JSON object in UTF-8 (or, with batching on, a non-empty array of
them), whose `query` and `operationName` are strings or null and whose `variables` and
`extensions` are objects or null; GET's `variables` and `extensions` parameters are JSON
objects. Anything else is refused here with HTTP 400 (rendered by GraphQLOverHttp as a
GraphQL error coded BAD_REQUEST), instead of strawberry's `data.get` on a string or
number (a 500 and a dropped connection) or a plain-text 400.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException

_STRING_MEMBERS = ("query", "operationName")
_OBJECT_MEMBERS = ("variables", "extensions")


class WellFormedRequests:
    """A mixin for the strawberry view; `decode_json` is the view's own (orjson)."""

    def parse_json(self, data: str | bytes) -> Any:
        """The POST body (the only JSON strawberry parses besides the GET parameters)."""
        body = self._decode(data, "the request body")
        operations = body if isinstance(body, list) else [body]
        if isinstance(body, list) and not body:
            raise _bad_request("the request body is an empty array")
        for operation in operations:
            _check_operation(operation)
        return body

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        parsed = dict(params)
        for name in _OBJECT_MEMBERS:
            raw = parsed.get(name)
            if raw:  # an empty parameter means "none", as strawberry reads it
                value = self._decode(raw, f"the {name} parameter")
                if value is not None and not isinstance(value, dict):
                    raise _bad_request(f"the {name} parameter must be a JSON object")
                parsed[name] = value
        return parsed

    def _decode(self, data: str | bytes, what: str) -> object:
        try:
            return self.decode_json(data)  # type: ignore[attr-defined]
        except ValueError:  # invalid JSON, invalid UTF-8, unpaired surrogates
            raise _bad_request(f"{what} is not valid JSON in UTF-8") from None


def _check_operation(operation: object) -> None:
    if not isinstance(operation, dict):
        raise _bad_request("a GraphQL request must be a JSON object")
    for name in _STRING_MEMBERS:
        if not isinstance(operation.get(name), (str, type(None))):
            raise _bad_request(f"{name} must be a string or null")
    for name in _OBJECT_MEMBERS:
        if not isinstance(operation.get(name), (dict, type(None))):
            raise _bad_request(f"{name} must be an object or null")


def _bad_request(reason: str) -> HTTPException:
    return HTTPException(400, reason)
