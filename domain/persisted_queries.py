"""Persisted queries: which document a request runs, when it names one by hash.

Two kinds of persisted document meet here:

- **Automatic persisted queries** (the protocol of Apollo's persisted-queries link): a
  client sends `extensions.persistedQuery {version: 1, sha256Hash}` without the query;
  a miss answers PERSISTED_QUERY_NOT_FOUND, the client resends hash and query, and the
  server checks the hash and remembers the document for everyone.
- **Trusted documents**: operations listed in a manifest (a partner's, or the public
  first-party manifests). A persisted-only client may run nothing else, so a stolen or
  leaked key cannot run arbitrary queries; it is refused before anything is parsed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

APQ_VERSION = 1
MANIFEST_FORMAT = "apollo-persisted-query-manifest"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryCode:
    # The message of NOT_FOUND is the one Apollo's link also matches on.
    NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    SHA_MISMATCH = "PROVIDED_SHA_DOES_NOT_MATCH"
    NOT_ALLOWED = "PERSISTED_QUERY_NOT_ALLOWED"
    INVALID = "BAD_USER_INPUT"


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def document_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Operation:
    id: str  # sha256 of body, lowercase hex
    name: str
    body: str


@dataclass(frozen=True, slots=True)
class DocumentPolicy:
    """What one client may run: free-form documents or only its manifest's."""

    persisted_only: bool
    manifest: Mapping[str, Operation]


class DocumentStore(Protocol):
    """Where automatic persisted queries live, by hash (shared by every server)."""

    async def get(self, sha256_hash: str) -> str | None: ...

    async def put(self, sha256_hash: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Resolved:
    """The document to run; `register` says it is new to the store and should be kept
    once it has proven to be a valid document (parsed, validated, executed)."""

    query: str | None
    register: bool = False
    trusted: bool = False  # from the client's manifest (its name is the operator's)


class PersistedDocuments:
    def __init__(self, store: DocumentStore) -> None:
        self._store = store

    async def resolve(
        self, query: str | None, extensions: Mapping[str, Any] | None, policy: DocumentPolicy
    ) -> Resolved:
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if policy.persisted_only:
                raise PersistedQueryError(
                    PersistedQueryCode.NOT_ALLOWED,
                    "only persisted operations may run here: send "
                    "extensions.persistedQuery.sha256Hash of an operation in your manifest",
                )
            return Resolved(query)
        sha256_hash = _checked_hash(persisted)
        if query is not None and document_hash(query) != sha256_hash:
            raise PersistedQueryError(
                PersistedQueryCode.SHA_MISMATCH, "provided sha does not match query"
            )
        trusted = policy.manifest.get(sha256_hash)
        if trusted is not None:
            return Resolved(trusted.body, trusted=True)
        if policy.persisted_only:
            raise PersistedQueryError(
                PersistedQueryCode.NOT_ALLOWED,
                f"operation {sha256_hash} is not in this client's manifest",
            )
        if query is not None:
            return Resolved(query, register=True)
        stored = await self._store.get(sha256_hash)
        if stored is None:
            # Apollo's link recognises the message as well as the code.
            raise PersistedQueryError(PersistedQueryCode.NOT_FOUND, "PersistedQueryNotFound")
        return Resolved(stored)

    async def register(self, query: str) -> None:
        await self._store.put(document_hash(query), query)


def _checked_hash(persisted: object) -> str:
    if not isinstance(persisted, Mapping):
        raise PersistedQueryError(
            PersistedQueryCode.INVALID, "extensions.persistedQuery must be an object"
        )
    if persisted.get("version") != APQ_VERSION:
        raise PersistedQueryError(
            PersistedQueryCode.INVALID, f"persistedQuery version must be {APQ_VERSION}"
        )
    sha256_hash = persisted.get("sha256Hash")
    if not isinstance(sha256_hash, str) or not _SHA256_HEX.match(sha256_hash):
        raise PersistedQueryError(
            PersistedQueryCode.INVALID, "persistedQuery.sha256Hash must be 64 lowercase hex digits"
        )
    return sha256_hash


# -- manifests --------------------------------------------------------------------------


class InvalidManifest(ValueError):
    pass


def parse_manifest(text: str) -> dict[str, Operation]:
    """Operations of a manifest file: Apollo's persisted-query manifest format
    (`{"format", "version", "operations": [{id, name, body}]}`) or a bare list of
    operations. Every id must be the sha256 of its body."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidManifest(f"not JSON: {error}") from None
    entries = data.get("operations") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InvalidManifest('expected {"operations": [...]} or a list of operations')
    operations: dict[str, Operation] = {}
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InvalidManifest(f"operation {position}: expected an object")
        body, name, op_id = entry.get("body"), entry.get("name"), entry.get("id")
        if not isinstance(body, str) or not isinstance(name, str) or not isinstance(op_id, str):
            raise InvalidManifest(f"operation {position}: needs string id, name and body")
        if document_hash(body) != op_id:
            raise InvalidManifest(f"operation {name!r}: id is not the sha256 of its body")
        operations[op_id] = Operation(id=op_id, name=name, body=body)
    return operations


def manifest_json(operations: Iterable[Operation]) -> str:
    return json.dumps(
        {
            "format": MANIFEST_FORMAT,
            "version": 1,
            "operations": [
                {"id": o.id, "name": o.name, "type": _operation_type(o.body), "body": o.body}
                for o in operations
            ],
        },
        indent=2,
    )


def _operation_type(body: str) -> str:
    keyword = body.lstrip().split(" ", 1)[0].split("{", 1)[0]
    return keyword if keyword in ("query", "mutation", "subscription") else "query"
