"""The input gate's per-document cache stays within its byte bound, whatever it is sent."""

from __future__ import annotations

from graphql import parse

from resolvers.extensions.input_guard import LiteralChecks


def test_distinct_large_documents_never_push_the_cache_past_its_bound() -> None:
    # given: a cache of 64 KB and forty distinct 20 KB documents (padding in a comment)
    checks = LiteralChecks(max_length=10_000, max_bytes=64 * 1024)
    for n in range(40):
        query = f'{{ product(slug: "s{n}") {{ id }} }} #' + "x" * 20_000
        # when
        assert checks.refusal(query, parse(query)) is None
    # then
    assert 0 < checks.bytes_used <= 64 * 1024


def test_a_refusal_is_remembered_and_a_document_over_the_bound_is_not_kept() -> None:
    checks = LiteralChecks(max_length=10_000, max_bytes=1024)
    bad = '{ product(slug: "a\\u0000b") { id } }'
    assert checks.refusal(bad, parse(bad)) is not None
    assert checks.refusal(bad, parse(bad)) == checks.refusal(bad, parse(bad))
    huge = "{ __typename } #" + "x" * 5_000
    assert checks.refusal(huge, parse(huge)) is None
    assert checks.bytes_used < 1024
