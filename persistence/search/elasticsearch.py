"""The Elasticsearch adapter of the `SearchIndex` port, on the official async client.

Reads and writes go through an alias (`ELASTICSEARCH_INDEX`, "products"); `rebuild`
fills a fresh timestamped index and moves the alias in one `update_aliases` call, so
searches never see a half-built index. Query bodies and response parsing are pure
functions in `persistence/search/elasticsearch_queries.py`.

Any failure to answer a search (refused connection, timeout, an error status, a body we
cannot read) becomes `SearchUnavailable`, which `FallbackSearchIndex` turns into an answer
from PostgreSQL; a bad cursor is the client's fault and stays `InvalidInput`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout, TransportError
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, NotFoundError
from elasticsearch.helpers import async_bulk

from domain.search import SearchDocument, SearchRequest, SearchResult, SearchUnavailable
from persistence.search.elasticsearch_queries import (
    ENGINE,
    build_search_body,
    document_body,
    index_definition,
    parse_search_response,
)
from settings import Settings

log = logging.getLogger(__name__)

# Where documents come from: the products with these ids (None: the whole catalog), in
# batches. `persistence/search_documents.iter_search_documents` bound to a database.
DocumentSource = Callable[[Sequence[int] | None], AsyncIterator[list[SearchDocument]]]


class ElasticsearchSearchIndex:
    engine = ENGINE

    def __init__(
        self,
        client: AsyncElasticsearch,
        documents: DocumentSource,
        *,
        alias: str = "products",
        timeout_seconds: float = 0.5,
        refresh: bool = False,
        write_timeout_seconds: float = 60.0,
    ) -> None:
        self._client = client
        # Searches must answer fast or fall back; bulk loads may take their time.
        self._searcher = client.options(request_timeout=timeout_seconds)
        self._writer = client.options(request_timeout=write_timeout_seconds)
        self._documents = documents
        self._alias = alias
        self._timeout = timeout_seconds
        # Tests ask for refresh-on-write to read their writes; the indexer does not.
        self._refresh = refresh
        self._alias_ready = False

    async def search(self, request: SearchRequest) -> SearchResult:
        body = build_search_body(request)  # a bad cursor raises here, before any I/O
        try:
            # The client's own timeout covers one HTTP request; this bounds the whole call.
            async with asyncio.timeout(self._timeout * 2):
                response = await self._searcher.search(index=self._alias, body=body)
        except (TimeoutError, ConnectionTimeout) as error:
            raise SearchUnavailable("timeout") from error
        except ApiError as error:
            raise SearchUnavailable(f"status {error.meta.status}") from error
        except TransportConnectionError as error:
            raise SearchUnavailable("unreachable") from error
        except TransportError as error:
            raise SearchUnavailable(type(error).__name__) from error
        try:
            return parse_search_response(response.body, request)
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise SearchUnavailable("unreadable response") from error

    async def index_products(self, product_ids: Sequence[int]) -> int:
        """Index these products' documents; ids without one (archived, deleted) leave.
        Every one is written (the count of them): comparing would cost a read."""
        if not product_ids:
            return 0
        await self._ensure_alias()
        indexed: set[int] = set()
        actions: list[dict[str, Any]] = []
        async for batch in self._documents(list(product_ids)):
            for doc in batch:
                indexed.add(doc.product_id)
                actions.append(_index_action(self._alias, doc))
        actions.extend(
            {"_op_type": "delete", "_index": self._alias, "_id": str(product_id)}
            for product_id in dict.fromkeys(product_ids)
            if product_id not in indexed
        )
        # A delete of a document that was never indexed answers 404: already gone.
        await async_bulk(self._writer, actions, ignore_status=(404,), refresh=self._refresh)
        return len(actions)

    async def rebuild(self) -> int:
        """Index the whole catalog into a new index, then point the alias at it."""
        name = f"{self._alias}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
        definition = index_definition()
        settings = {**definition["settings"], "refresh_interval": "-1"}  # faster bulk load
        await self._writer.indices.create(
            index=name, settings=settings, mappings=definition["mappings"]
        )
        count = 0
        try:
            async for batch in self._documents(None):
                await async_bulk(self._writer, [_index_action(name, doc) for doc in batch])
                count += len(batch)
            await self._writer.indices.put_settings(index=name, settings={"refresh_interval": None})
            await self._writer.indices.refresh(index=name)
        except BaseException:
            await self._writer.indices.delete(index=name, ignore_unavailable=True)
            raise
        old = await self._indexes_behind_alias()
        await self._writer.indices.update_aliases(
            actions=[
                *({"remove": {"index": index, "alias": self._alias}} for index in old),
                {"add": {"index": name, "alias": self._alias}},
            ]
        )
        if old:
            await self._writer.indices.delete(index=",".join(old), ignore_unavailable=True)
        self._alias_ready = True
        log.info(
            "search index %s built with %d documents; alias %s moved", name, count, self._alias
        )
        return count

    async def aclose(self) -> None:
        await self._client.close()

    async def _indexes_behind_alias(self) -> list[str]:
        try:
            response = await self._writer.indices.get_alias(name=self._alias)
        except NotFoundError:
            return []
        return sorted(response.body)

    async def _ensure_alias(self) -> None:
        """Without an alias, a write would auto-create an index with guessed mappings."""
        if self._alias_ready:
            return
        if not await self._indexes_behind_alias():
            # A fixed name: two processes racing here create one index, not two behind
            # one alias (which would refuse writes).
            definition = index_definition()
            try:
                await self._writer.indices.create(
                    index=f"{self._alias}-initial",
                    settings=definition["settings"],
                    mappings=definition["mappings"],
                    aliases={self._alias: {}},
                )
            except BadRequestError as error:
                if error.error != "resource_already_exists_exception":
                    raise
        self._alias_ready = True


def _index_action(index: str, doc: SearchDocument) -> dict[str, Any]:
    return {
        "_op_type": "index",
        "_index": index,
        "_id": str(doc.product_id),
        "_source": document_body(doc),
    }


def create_elasticsearch_index(
    settings: Settings, documents: DocumentSource, *, refresh: bool = False
) -> ElasticsearchSearchIndex:
    """The adapter for `ELASTICSEARCH_URL` (the composition root calls this in lifespan)."""
    if not settings.elasticsearch_url:
        raise ValueError("ELASTICSEARCH_URL is not set")
    client = AsyncElasticsearch(
        settings.elasticsearch_url.get_secret_value(),
        request_timeout=settings.elasticsearch_timeout_seconds,
        # A search that failed is answered by PostgreSQL at once; retrying would only
        # multiply the wait.
        max_retries=0,
        retry_on_timeout=False,
    )
    return ElasticsearchSearchIndex(
        client,
        documents,
        alias=settings.elasticsearch_index,
        timeout_seconds=settings.elasticsearch_timeout_seconds,
        refresh=refresh,
    )
