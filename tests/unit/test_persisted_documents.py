"""Automatic persisted queries and partner manifests through an in-memory document store:
what a client sending a hash, a query or both gets back."""

from __future__ import annotations

import pytest

from domain.persisted_queries import (
    DocumentPolicy,
    Operation,
    PersistedDocuments,
    PersistedQueryCode,
    PersistedQueryError,
    document_hash,
)
from tests.fakes.documents import FakeDocumentStore

QUERY = "{ shop { name } }"
OPEN = DocumentPolicy(persisted_only=False, manifest={})


def apq(body: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": document_hash(body)}}


async def test_a_hash_is_unknown_until_its_query_ran_once_then_it_is_enough() -> None:
    store = FakeDocumentStore()
    documents = PersistedDocuments(store)

    with pytest.raises(PersistedQueryError) as missing:
        await documents.resolve(None, apq(QUERY), OPEN)
    first = await documents.resolve(QUERY, apq(QUERY), OPEN)
    await documents.register(QUERY)  # the app does this once the query has run
    later = await documents.resolve(None, apq(QUERY), OPEN)

    assert missing.value.code == PersistedQueryCode.NOT_FOUND
    assert (first.query, first.register) == (QUERY, True)
    assert (later.query, later.register) == (QUERY, False)


async def test_a_query_that_does_not_match_its_hash_is_refused_and_not_stored() -> None:
    store = FakeDocumentStore()

    with pytest.raises(PersistedQueryError) as raised:
        await PersistedDocuments(store).resolve("{ other }", apq(QUERY), OPEN)

    assert raised.value.code == PersistedQueryCode.SHA_MISMATCH and store.documents == {}


async def test_a_persisted_only_client_runs_its_manifest_and_nothing_else() -> None:
    trusted = Operation(document_hash(QUERY), "Shop", QUERY)
    policy = DocumentPolicy(persisted_only=True, manifest={trusted.id: trusted})
    store = FakeDocumentStore()
    store.documents[document_hash("{ stored }")] = "{ stored }"  # another client's APQ
    documents = PersistedDocuments(store)

    allowed = await documents.resolve(None, apq(QUERY), policy)
    refused = []
    for query, extensions in (("{ free }", None), (None, apq("{ stored }"))):
        with pytest.raises(PersistedQueryError) as raised:
            await documents.resolve(query, extensions, policy)
        refused.append(raised.value.code)

    assert (allowed.query, allowed.register) == (QUERY, False)
    assert refused == [PersistedQueryCode.NOT_ALLOWED, PersistedQueryCode.NOT_ALLOWED]
