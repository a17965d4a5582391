"""An in-process client for the ASGI app that speaks GraphQL and reads our headers."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from starlette.applications import Starlette

from app import Components, Container, RunningContainer, create_app
from domain.payments import PaymentGateway
from integrations.tracing import Tracing
from settings import Settings

QUERIES = Path(__file__).resolve().parents[1] / "bench" / "queries"


def screen_query(name: str) -> str:
    """The benchmark's screen documents: tests and the benchmark measure the same thing."""
    return (QUERIES / f"{name}.graphql").read_text()


@dataclass
class GraphQLResponse:
    status: int
    body: dict[str, Any]
    statements: int

    @property
    def data(self) -> Any:
        assert "errors" not in self.body, self.body["errors"]
        return self.body["data"]

    @property
    def errors(self) -> list[dict[str, Any]]:
        return list(self.body.get("errors", []))

    @property
    def error_codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


@dataclass
class AppClient:
    app: Starlette
    http: httpx.AsyncClient
    running: RunningContainer

    @property
    def container(self) -> Container:
        return self.running()

    async def query(
        self, document: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> GraphQLResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await self.http.post(
            "/graphql", json={"query": document, "variables": variables or {}}, headers=headers
        )
        return GraphQLResponse(
            status=response.status_code,
            body=response.json(),
            statements=int(response.headers.get("x-sql-statements", "-1")),
        )


class CountingRedis(Redis):
    """A real Redis client that counts the commands it sends (not those in pipelines)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: Counter[str] = Counter()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.commands[str(args[0]).upper()] += 1
        return await super().execute_command(*args, **options)


@asynccontextmanager
async def running_app(
    settings: Settings,
    *,
    redis: Redis | None = None,
    gateway: PaymentGateway | None = None,
    components: Components | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[AppClient]:
    running = RunningContainer()
    app = create_app(
        settings,
        redis=redis,
        gateway=gateway,
        components=components,
        running=running,
        tracing=tracing,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield AppClient(app=app, http=http, running=running)


SIGN_UP = """mutation($email: String!, $password: String!, $name: String!) {
  customerCreate(input: {email: $email, password: $password, name: $name}) {
    customer { id email name } userErrors { field code message } } }"""
LOG_IN = """mutation($email: String!, $password: String!) {
  customerAccessTokenCreate(input: {email: $email, password: $password}) {
    customerAccessToken { accessToken expiresAt } userErrors { field code message } } }"""


async def customer_token(client: AppClient, email: str, password: str = "correct horse") -> str:
    """Sign up (if needed) and log in: the customer's access token."""
    await client.query(SIGN_UP, {"email": email, "password": password, "name": email.split("@")[0]})
    result = await client.query(LOG_IN, {"email": email, "password": password})
    token: str = result.data["customerAccessTokenCreate"]["customerAccessToken"]["accessToken"]
    return token
