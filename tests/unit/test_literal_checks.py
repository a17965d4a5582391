"""The input gate judges a document's literals once, and keeps the verdict with the cached
document: no cache of its own to bound, and a document too big to cache is still judged."""

from __future__ import annotations

from graphql import parse

from resolvers.extensions.documents import DocumentCache
from resolvers.extensions.input_guard import LITERALS, InputGuard
from resolvers.schema import build_schema

REFUSED = '{ product(slug: "a\\u0000b") { id } }'


async def test_a_refused_literal_is_refused_every_time_and_judged_once() -> None:
    # given: the schema with its document cache
    schema = build_schema()
    # when: the same document twice
    first = await schema.execute(REFUSED)
    second = await schema.execute(REFUSED)
    # then: refused both times, and the verdict sits with the cached document
    for result in (first, second):
        assert result.data is None
        assert [e.extensions["code"] for e in result.errors or []] == ["BAD_USER_INPUT"]
    documents = schema.documents  # type: ignore[attr-defined]
    cached = documents.get(REFUSED)
    assert cached is not None and cached.facts[LITERALS] is not None


def test_a_document_the_cache_does_not_keep_is_still_judged() -> None:
    # given: a cache too small for any document
    documents = DocumentCache(max_bytes=1)
    guard = InputGuard(documents=documents, max_length=10_000)
    document = parse(REFUSED)
    # when / then: judged, nothing kept
    assert guard._literals_refusal(REFUSED, document) is not None
    assert len(documents) == 0 and documents.bytes_used == 0
