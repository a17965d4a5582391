"""A local fake of the few Elasticsearch endpoints the search adapter calls.

`running_elasticsearch_fake()` serves a Starlette app with uvicorn on 127.0.0.1 (a free
port, a background thread) and yields an `ElasticsearchFake`: point the real
`AsyncElasticsearch` client at `fake.url`. It does not search: `_search` answers what the
test scripted (`answer_search`), after an optional delay. It does keep indexes, aliases and
documents, so bulk writes and alias switches can be checked: index create (with aliases),
delete, `_settings`, `_refresh`, `GET /_alias/<name>`, `POST /_aliases`, `POST /_bulk`.

Every answer carries `X-Elastic-Product: Elasticsearch`, which the 8.x/9.x client insists
on before it believes a 2xx.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes.serving import serving_in_thread

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: bytes


@dataclass
class ElasticsearchFake:
    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    indexes: dict[str, dict[str, Json]] = field(default_factory=dict)  # name -> id -> source
    definitions: dict[str, Json] = field(default_factory=dict)
    aliases: dict[str, set[str]] = field(default_factory=dict)  # alias -> index names
    search_status: int = 200
    search_body: Json = field(default_factory=dict)
    search_delay: float = 0.0

    def answer_search(self, body: Json, *, status: int = 200, delay: float = 0.0) -> None:
        self.search_status, self.search_body, self.search_delay = status, body, delay

    def searches(self) -> list[Json]:
        return [json.loads(r.body) for r in self.requests if r.path.endswith("/_search")]

    def documents(self, alias_or_index: str) -> dict[str, Json]:
        names = self.aliases.get(alias_or_index, {alias_or_index})
        found: dict[str, Json] = {}
        for name in names:
            found.update(self.indexes.get(name, {}))
        return found

    # The handlers run on the server's thread, one event loop: no locking needed.

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        path = request.url.path
        self.requests.append(
            RecordedRequest(request.method, path, dict(request.query_params), body)
        )
        parts = [p for p in path.split("/") if p]
        method = request.method
        if parts and parts[-1] == "_search":
            if self.search_delay:
                await asyncio.sleep(self.search_delay)
            return _json(self.search_status, self.search_body)
        if method in ("POST", "PUT") and parts == ["_bulk"]:
            return _json(200, self._bulk(body))
        if method == "POST" and parts == ["_aliases"]:
            return self._update_aliases(json.loads(body))
        if method == "GET" and len(parts) == 2 and parts[0] == "_alias":
            return self._get_alias(parts[1])
        if method == "PUT" and len(parts) == 1:
            return self._create(parts[0], json.loads(body or b"{}"))
        if method == "DELETE" and len(parts) == 1:
            for name in parts[0].split(","):
                self.indexes.pop(name, None)
                for members in self.aliases.values():
                    members.discard(name)
            return _json(200, {"acknowledged": True})
        if len(parts) == 2 and parts[1] in ("_settings", "_refresh"):
            return _json(200, {"acknowledged": True})
        return _error(400, "unsupported_by_fake", f"{method} {path}")

    def _create(self, name: str, body: Json) -> Response:
        if name in self.indexes:
            return _error(400, "resource_already_exists_exception", f"index [{name}] exists")
        self.indexes[name] = {}
        self.definitions[name] = body
        for alias in body.get("aliases", {}):
            self.aliases.setdefault(alias, set()).add(name)
        return _json(200, {"acknowledged": True, "index": name})

    def _get_alias(self, alias: str) -> Response:
        members = self.aliases.get(alias)
        if not members:
            return _json(404, {"error": f"alias [{alias}] missing", "status": 404})
        return _json(200, {name: {"aliases": {alias: {}}} for name in members})

    def _update_aliases(self, body: Json) -> Response:
        for action in body["actions"]:
            (kind, spec), *_ = action.items()
            members = self.aliases.setdefault(spec["alias"], set())
            if kind == "add":
                members.add(spec["index"])
            elif kind == "remove":
                members.discard(spec["index"])
        return _json(200, {"acknowledged": True})

    def _bulk(self, body: bytes) -> Json:
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        items: list[Json] = []
        position = 0
        while position < len(lines):
            (op, meta), *_ = lines[position].items()
            position += 1
            names = self.aliases.get(meta["_index"], {meta["_index"]})
            docs = self.indexes.setdefault(sorted(names)[0], {})
            if op == "index":
                docs[meta["_id"]] = lines[position]
                position += 1
                items.append({op: {"_id": meta["_id"], "status": 201, "result": "created"}})
            elif op == "delete":
                found = docs.pop(meta["_id"], None) is not None
                items.append(
                    {
                        op: {
                            "_id": meta["_id"],
                            "status": 200 if found else 404,
                            "result": "deleted" if found else "not_found",
                        }
                    }
                )
        return {
            "took": 1,
            "errors": any(i[k]["status"] >= 300 for i in items for k in i),
            "items": items,
        }


def _json(status: int, body: Json) -> Response:
    return Response(
        json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"X-Elastic-Product": "Elasticsearch"},
    )


def _error(status: int, kind: str, reason: str) -> Response:
    cause = {"type": kind, "reason": reason}
    return _json(status, {"error": {"root_cause": [cause], **cause}, "status": status})


@contextmanager
def running_elasticsearch_fake() -> Iterator[ElasticsearchFake]:
    """Serve a fresh fake on 127.0.0.1 for the duration of the block."""
    fake = ElasticsearchFake()
    app = Starlette(
        routes=[
            Route("/{path:path}", fake.handle, methods=["GET", "POST", "PUT", "DELETE", "HEAD"])
        ]
    )
    with serving_in_thread(app, "Elasticsearch") as url:
        fake.url = url
        yield fake
