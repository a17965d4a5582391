"""Elasticsearch down: `search` is answered by PostgreSQL and says so; never an error."""

from __future__ import annotations

import socket

from pydantic import SecretStr

from persistence.db import Database
from persistence.search.postgres import PostgresSearchIndex
from settings import Settings
from tests.client import running_app
from tests.factories import CatalogFactory

SEARCH = """query($q: String!) { search(query: $q, first: 5) {
  totalCount edges { node { title } } facets { name } } }"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once it is closed


async def test_search_falls_back_to_postgres_when_elasticsearch_is_unreachable(
    settings: Settings, db: Database, clean: None
) -> None:
    kettle = await CatalogFactory(db).product("Copper Kettle", brand="Boil")
    await PostgresSearchIndex(db).index_products([kettle.id])
    elastic = settings.model_copy(
        update={"elasticsearch_url": SecretStr(f"http://127.0.0.1:{_closed_port()}")}
    )

    async with running_app(elastic) as client:
        first = await client.query(SEARCH, {"q": "kettle"})
        second = await client.query(SEARCH, {"q": "kettle"})  # the breaker skips ES now

    for response in (first, second):
        assert response.status == 200
        assert response.data["search"]["edges"] == [{"node": {"title": "Copper Kettle"}}]
        assert response.data["search"]["totalCount"] == 1
        report = response.body["extensions"]["search"]
        assert report["engine"] == "postgres"
        assert report["fallbackReason"].startswith("elasticsearch unavailable")
