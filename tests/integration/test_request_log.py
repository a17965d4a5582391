"""The logs as an operator's log pipeline reads them: one JSON object per line, one line
per request with its ids and numbers, the error id of a masked error, the trace of the
current span, and no customer's personal data anywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from app import Components
from domain.catalog import Product
from domain.pagination import Page
from observability.logs import RequestFields, formatter_for, json_formatter
from persistence.catalog.repository import CatalogRepository
from persistence.db import Database
from settings import Settings
from tests.client import customer_token, running_app, screen_query
from tests.factories import CatalogFactory
from tests.shop import ADDRESS, SET_ADDRESS, vid

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status email } userErrors { code } } }"""
CART_CREATE = """mutation($lines: [CartLineInput!]!, $email: String!) {
  cartCreate(input: {lines: $lines, buyerIdentity: {email: $email}}) { cart { id } userErrors { code } } }"""


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Every record of every logger, formatted as production formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestFields())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]  # each line is JSON


@pytest.fixture
def logged_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"log_requests": True})


class ProductsFail(CatalogRepository):
    async def list_products(self, *args: Any, **kwargs: Any) -> Page[Product]:
        raise RuntimeError("boom: an unexpected bug")


async def test_each_request_writes_one_json_line_with_its_ids_and_numbers(
    logged_settings: Settings, clean: None, db: Database, log_lines: io.StringIO
) -> None:
    await CatalogFactory(db).product("Lamp")
    async with running_app(logged_settings) as client:
        response = await client.http.post(
            "/graphql",
            json={"query": screen_query("listing_screen"), "variables": {"first": 5}},
            headers={"X-Request-Id": "req-0001"},
        )
        await client.http.get("/healthz")  # probes write no line

    body = response.json()
    lines = [line for line in parsed(log_lines) if line["logger"] == "commerce.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-0001"
    assert line["operation"] == "ListingScreen"
    assert line["operation_type"] == "query"
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert line["statements"] == int(response.headers["x-sql-statements"]) > 0
    assert line["cost"] == body["extensions"]["cost"]["requestedQueryCost"]
    assert 0 < line["duration_ms"] < 10_000
    assert line["level"] == "INFO" and "time" in line
    assert "variables" not in json.dumps(line)


async def test_a_masked_error_logs_its_error_id_under_the_request(
    logged_settings: Settings, clean: None, log_lines: io.StringIO
) -> None:
    async with running_app(logged_settings, components=Components(catalog=ProductsFail)) as client:
        response = await client.http.post(
            "/graphql",
            json={"query": screen_query("listing_screen"), "variables": {"first": 5}},
            headers={"X-Request-Id": "req-0002"},
        )

    error_id = response.json()["errors"][0]["extensions"]["errorId"]
    lines = parsed(log_lines)
    failure = [line for line in lines if line["logger"] == "commerce.errors"]
    assert len(failure) == 1
    assert failure[0]["error_id"] == error_id
    assert failure[0]["request_id"] == "req-0002"
    assert "RuntimeError" in failure[0]["exc_info"]  # the traceback, in the same object
    request = [line for line in lines if line["logger"] == "commerce.request"]
    assert request[0]["error_ids"] == [error_id]
    assert request[0]["outcome"] == "error"


async def test_lines_carry_the_current_span_trace(
    logged_settings: Settings, clean: None, log_lines: io.StringIO
) -> None:
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0x00F067AA0BA902B7,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    async with running_app(logged_settings) as client:
        with trace.use_span(span):
            await client.query("{ products(first: 1) { edges { cursor } } }")
        await client.query("{ products(first: 1) { edges { cursor } } }")

    first, second = [line for line in parsed(log_lines) if line["logger"] == "commerce.request"]
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["span_id"] == "00f067aa0ba902b7"
    assert "trace_id" not in second


async def test_no_log_line_of_a_sign_up_and_checkout_holds_the_customers_data(
    logged_settings: Settings, clean: None, db: Database, log_lines: io.StringIO
) -> None:
    email = "zelda.probe@example.com"
    settings = logged_settings.model_copy(
        update={"metrics_token": None, "metrics_port": None, "environment": "production"}
    )
    mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[3])
    async with running_app(settings) as client:
        token = await customer_token(client, email)
        created = await client.query(
            CART_CREATE,
            {"lines": [{"variantId": vid(mug), "quantity": 1}], "email": email},
            token=token,
        )
        cart = created.data["cartCreate"]["cart"]["id"]
        await client.query(SET_ADDRESS, {"id": cart, "a": ADDRESS}, token=token)
        paid = await client.query(
            CHECKOUT,
            {
                "input": {
                    "cartId": cart,
                    "idempotencyKey": "pii-probe-0001",
                    "paymentMethod": "pm_card_visa",
                }
            },
            token=token,
        )

    assert paid.data["checkoutComplete"]["order"]["status"] == "PAID"
    text = log_lines.getvalue()
    lines = parsed(log_lines)
    assert len([line for line in lines if line["logger"] == "commerce.request"]) >= 5
    for secret in (email, "zelda", ADDRESS["address1"], ADDRESS["lastName"], token):
        assert secret.lower() not in text.lower()


def test_production_logs_json_and_development_plain_text(settings: Settings) -> None:
    production = settings.model_copy(update={"environment": "production"})
    development = settings.model_copy(update={"environment": "development"})

    assert production.effective_log_format == "json" and production.requests_logged
    assert development.effective_log_format == "text" and not development.requests_logged
    record = logging.LogRecord("commerce", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    assert json.loads(formatter_for("json").format(record))["message"] == "hello you"
    assert formatter_for("text").format(record).endswith("INFO commerce hello you")
