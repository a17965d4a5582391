"""Order detail for history screens: staff fulfil some or all lines with tracking, every
transition leaves a status history row, cancellations keep their reason, and a page of
orders costs the same SQL whatever its size."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select, update

from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.migrate import upgrade
from persistence.tables import fulfillment_lines, fulfillments, orders, outbox
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import FAST_PASSWORDS, TEST_PII_INDEX_KEY
from tests.factories import CatalogFactory, MadeProduct
from tests.shop import ready_cart, staff_token, stock

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status lines { id sku quantity } } userErrors { code } } }"""
FULFIL = """mutation($input: OrderFulfillInput!) { orderFulfill(input: $input) {
  order { status fulfillmentStatus
          fulfillments { trackingCompany trackingNumber trackingUrl createdAt
                         fulfillmentLineItems { lineItem { sku } quantity } } }
  userErrors { field code } } }"""
CANCEL = """mutation($input: OrderCancelInput!) { orderCancel(input: $input) {
  order { status cancelReason } userErrors { field code } } }"""
DETAIL = """query($id: ID!) { order(id: $id) { status cancelReason fulfillmentStatus
  statusHistory { status at } fulfillments { fulfillmentLineItems { quantity } } } }"""
MY_ORDERS = """query($n: Int!) { me { orders(first: $n) { edges { node {
  number status cancelReason lines { id sku quantity unitPrice { amount } }
  fulfillments { trackingNumber createdAt fulfillmentLineItems { lineItem { sku } quantity } }
  statusHistory { status at } } } } } }"""


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(settings, gateway=SandboxGateway()) as client:
        yield client


@pytest.fixture
async def goods(db: Database, clean: None) -> dict[str, MadeProduct]:
    factory = CatalogFactory(db)
    return {
        "mug": await factory.product("Mug", prices=[1200], stock=[100]),
        "pen": await factory.product("Pen", prices=[300], stock=[100]),
    }


async def place(
    client: AppClient,
    lines: list[tuple[MadeProduct, int]],
    key: str,
    token: str | None = None,
    method: str = "pm_card_visa",
) -> dict[str, Any]:
    cart = await ready_cart(client, lines, token=token)
    result = await client.query(
        CHECKOUT,
        {"input": {"cartId": cart, "idempotencyKey": key, "paymentMethod": method}},
        token=token,
    )
    order: dict[str, Any] = result.data["checkoutComplete"]["order"]
    return order


async def fulfil(client: AppClient, token: str, **fields: Any) -> dict[str, Any]:
    result = await client.query(FULFIL, {"input": fields}, token=token)
    payload: dict[str, Any] = result.data["orderFulfill"]
    return payload


async def written(db: Database) -> tuple[int, int, int]:
    """(fulfilments, fulfilment lines, FulfillmentCreated events) in the database."""
    async with db.reader.connect() as connection:
        counts = [
            (await connection.execute(select(func.count()).select_from(t))).scalar_one()
            for t in (fulfillments, fulfillment_lines)
        ]
        events = (
            await connection.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.topic == "FulfillmentCreated")
            )
        ).scalar_one()
    return counts[0], counts[1], events


async def test_partial_then_complete_fulfilment_with_tracking(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    order = await place(shop, [(goods["mug"], 3), (goods["pen"], 1)], "fulfil-key-1")
    mug_line, pen_line = (line["id"] for line in order["lines"])

    partial = await fulfil(
        shop,
        boss,
        orderId=order["id"],
        lines=[{"lineId": mug_line, "quantity": 2}],
        tracking={"company": " DHL ", "number": "JD0001", "url": "https://dhl.example/t/JD0001"},
    )
    rest = await fulfil(shop, boss, orderId=order["id"])  # no lines: everything left
    again = await fulfil(shop, boss, orderId=order["id"])
    detail = (await shop.query(DETAIL, {"id": order["id"]}, token=boss)).data["order"]

    assert partial["userErrors"] == [] and partial["order"]["status"] == "PAID"
    assert partial["order"]["fulfillmentStatus"] == "PARTIALLY_FULFILLED"
    [shipped] = partial["order"]["fulfillments"]
    assert {k: v for k, v in shipped.items() if k != "createdAt"} == {
        "trackingCompany": "DHL",
        "trackingNumber": "JD0001",
        "trackingUrl": "https://dhl.example/t/JD0001",
        "fulfillmentLineItems": [{"lineItem": {"sku": "MUG-0"}, "quantity": 2}],
    }
    assert (
        rest["order"]["status"] == "FULFILLED" and rest["order"]["fulfillmentStatus"] == "FULFILLED"
    )
    assert rest["order"]["fulfillments"][1]["fulfillmentLineItems"] == [
        {"lineItem": {"sku": "MUG-0"}, "quantity": 1},
        {"lineItem": {"sku": "PEN-0"}, "quantity": 1},
    ]
    assert rest["order"]["fulfillments"][1]["trackingNumber"] is None
    assert again == {
        "order": None,
        "userErrors": [{"field": ["orderId"], "code": "INVALID_TRANSITION"}],
    }
    assert [c["status"] for c in detail["statusHistory"]] == [
        "PENDING_PAYMENT",
        "PAID",
        "FULFILLED",
    ]
    assert await written(db) == (2, 3, 2)
    async with db.reader.connect() as connection:
        payloads = (
            await connection.execute(
                select(outbox.c.payload)
                .where(outbox.c.topic == "FulfillmentCreated")
                .order_by(outbox.c.id)
            )
        ).scalars()
        assert [p["status"] for p in payloads] == ["PAID", "FULFILLED"]
    assert pen_line != mug_line


@pytest.mark.parametrize(
    ("lines", "tracking", "errors"),
    [
        ([("mug", 4)], None, [(["lines", "0", "quantity"], "FULFILLMENT_QUANTITY_EXCEEDED")]),
        (
            [("mug", 2), ("mug", 2)],
            None,
            [
                (["lines", "0", "quantity"], "FULFILLMENT_QUANTITY_EXCEEDED"),
                (["lines", "1", "quantity"], "FULFILLMENT_QUANTITY_EXCEEDED"),
            ],
        ),
        ([("mug", 0)], None, [(["lines", "0", "quantity"], "INVALID_QUANTITY")]),
        ([("pen", 1), ("mug", -1)], None, [(["lines", "1", "quantity"], "INVALID_QUANTITY")]),
        ([("garbage", 1)], None, [(["lines", "0", "lineId"], "LINE_NOT_FOUND")]),
        ([("other", 1)], None, [(["lines", "0", "lineId"], "LINE_NOT_FOUND")]),
        ([("beyond", 1)], None, [(["lines", "0", "lineId"], "LINE_NOT_FOUND")]),
        ([("variant", 1)], None, [(["lines", "0", "lineId"], "LINE_NOT_FOUND")]),
        ([], None, [(["lines"], "INVALID")]),
        (None, {"url": "javascript:alert(1)"}, [(["tracking", "url"], "INVALID_TRACKING_URL")]),
        (None, {"url": "ftp://files.example/x"}, [(["tracking", "url"], "INVALID_TRACKING_URL")]),
        (None, {"url": "https://"}, [(["tracking", "url"], "INVALID_TRACKING_URL")]),
        (None, {"url": "https://a.example/x y"}, [(["tracking", "url"], "INVALID_TRACKING_URL")]),
        (
            None,
            {"url": "https://a.example:99999/"},
            [(["tracking", "url"], "INVALID_TRACKING_URL")],
        ),
        (None, {"number": "1" * 256}, [(["tracking", "number"], "TOO_LONG")]),
    ],
    ids=[
        "more-than-ordered",
        "twice-the-same-line-too-much",
        "zero",
        "negative",
        "not-a-line-id",
        "line-of-another-order",
        "position-past-the-end",
        "a-variant-id",
        "empty-lines",
        "javascript-url",
        "ftp-url",
        "url-without-host",
        "url-with-space",
        "url-bad-port",
        "number-too-long",
    ],
)
async def test_refused_fulfilments_write_nothing(
    shop: AppClient,
    goods: dict[str, MadeProduct],
    db: Database,
    lines: list[tuple[str, int]] | None,
    tracking: dict[str, str] | None,
    errors: list[tuple[list[str], str]],
) -> None:
    boss = await staff_token(shop, db)
    order = await place(shop, [(goods["mug"], 3), (goods["pen"], 1)], "fulfil-key-2")
    other = await place(shop, [(goods["mug"], 1)], "fulfil-key-3")
    ids = {
        "mug": order["lines"][0]["id"],
        "pen": order["lines"][1]["id"],
        "other": other["lines"][0]["id"],
        "garbage": "not-an-id",
        "beyond": encode_gid("OrderLine", f"{decode_gid(order['id'])[1]}.3"),
        "variant": encode_gid("ProductVariant", goods["mug"].variant_ids[0]),
    }
    fields: dict[str, Any] = {"orderId": order["id"]}
    if lines is not None:
        fields["lines"] = [{"lineId": ids[name], "quantity": q} for name, q in lines]
    if tracking is not None:
        fields["tracking"] = tracking

    refused = await fulfil(shop, boss, **fields)

    assert refused == {
        "order": None,
        "userErrors": [{"field": field, "code": code} for field, code in errors],
    }
    assert await written(db) == (0, 0, 0)
    detail = (await shop.query(DETAIL, {"id": order["id"]}, token=boss)).data["order"]
    assert detail["status"] == "PAID" and detail["fulfillments"] == []


async def test_a_line_id_of_another_order_never_fulfils_that_order(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    mine = await place(shop, [(goods["mug"], 1)], "fulfil-key-4")
    theirs = await place(shop, [(goods["pen"], 1)], "fulfil-key-5")

    refused = await fulfil(
        shop, boss, orderId=mine["id"], lines=[{"lineId": theirs["lines"][0]["id"], "quantity": 1}]
    )

    assert refused["userErrors"] == [{"field": ["lines", "0", "lineId"], "code": "LINE_NOT_FOUND"}]
    theirs_now = (await shop.query(DETAIL, {"id": theirs["id"]}, token=boss)).data["order"]
    assert theirs_now["fulfillments"] == [] and theirs_now["status"] == "PAID"


async def test_customers_can_neither_fulfil_nor_see_another_customers_fulfilments(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    ann = await customer_token(shop, "ann@example.com")
    bob = await customer_token(shop, "bob@example.com")
    order = await place(shop, [(goods["mug"], 2)], "fulfil-key-6", token=ann)
    await fulfil(
        shop, boss, orderId=order["id"], lines=[{"lineId": order["lines"][0]["id"], "quantity": 1}]
    )

    as_ann = await shop.query(FULFIL, {"input": {"orderId": order["id"]}}, token=ann)
    as_bob = await shop.query(DETAIL, {"id": order["id"]}, token=bob)
    mine = await shop.query(DETAIL, {"id": order["id"]}, token=ann)

    assert as_ann.error_codes == ["FORBIDDEN"]
    assert as_bob.data["order"] is None
    assert mine.data["order"]["fulfillments"] == [{"fulfillmentLineItems": [{"quantity": 1}]}]


async def test_concurrent_fulfilments_never_exceed_the_ordered_quantity(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    order = await place(shop, [(goods["mug"], 5)], "fulfil-key-7")
    line = order["lines"][0]["id"]

    # six staff members each ship 2 of the 5 units at the same moment
    results = await asyncio.gather(
        *(
            fulfil(shop, boss, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}])
            for _ in range(6)
        )
    )
    # and five more each ship "everything left"
    rest = await asyncio.gather(*(fulfil(shop, boss, orderId=order["id"]) for _ in range(5)))

    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["FULFILLMENT_QUANTITY_EXCEEDED"] * 4 + ["OK"] * 2
    rest_codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in rest)
    assert rest_codes == ["INVALID_TRANSITION"] * 4 + ["OK"]
    async with db.reader.connect() as connection:
        shipped = (
            await connection.execute(select(func.sum(fulfillment_lines.c.quantity)))
        ).scalar_one()
    assert shipped == 5
    assert await written(db) == (3, 3, 3)


async def test_history_rows_per_transition_and_cancel_reasons(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    declined = await place(
        shop, [(goods["mug"], 1)], "fulfil-key-8", method="pm_card_chargeDeclined"
    )
    paid = await place(shop, [(goods["mug"], 1)], "fulfil-key-9")
    pending = await place(shop, [(goods["pen"], 1)], "fulfil-key-10", method="pm_card_timeout")
    to_cancel_plain = await place(shop, [(goods["pen"], 1)], "fulfil-key-11")

    cancelled = (
        await shop.query(
            CANCEL,
            {"input": {"orderId": paid["id"], "reason": "  customer changed mind "}},
            token=boss,
        )
    ).data["orderCancel"]
    too_long = (
        await shop.query(
            CANCEL, {"input": {"orderId": to_cancel_plain["id"], "reason": "x" * 501}}, token=boss
        )
    ).data["orderCancel"]
    plain = (
        await shop.query(CANCEL, {"input": {"orderId": to_cancel_plain["id"]}}, token=boss)
    ).data["orderCancel"]
    async with db.writer.begin() as connection:  # its reservation ran out
        await connection.execute(
            update(orders)
            .where(orders.c.status == "PENDING_PAYMENT")
            .values(reservation_expires_at=func.now() - func.make_interval(0, 0, 0, 0, 1))
        )
    assert await shop.container.orders.expire_unpaid() == 1

    def detail(order: dict[str, Any]) -> Any:
        return shop.query(DETAIL, {"id": order["id"]}, token=boss)

    states = {
        name: (await detail(order)).data["order"]
        for name, order in (
            ("declined", declined),
            ("cancelled", paid),
            ("expired", pending),
            ("plain", to_cancel_plain),
        )
    }
    assert cancelled == {
        "order": {"status": "CANCELLED", "cancelReason": "customer changed mind"},
        "userErrors": [],
    }
    assert too_long == {"order": None, "userErrors": [{"field": ["reason"], "code": "TOO_LONG"}]}
    assert plain == {"order": {"status": "CANCELLED", "cancelReason": None}, "userErrors": []}
    history = {name: [c["status"] for c in s["statusHistory"]] for name, s in states.items()}
    assert history == {
        "declined": ["PENDING_PAYMENT", "PAYMENT_FAILED"],
        "cancelled": ["PENDING_PAYMENT", "PAID", "CANCELLED"],
        "expired": ["PENDING_PAYMENT", "CANCELLED"],
        "plain": ["PENDING_PAYMENT", "PAID", "CANCELLED"],
    }
    reasons = {name: s["cancelReason"] for name, s in states.items()}
    assert reasons == {
        "declined": None,  # a failed payment is not a cancellation
        "cancelled": "customer changed mind",
        "expired": "payment not completed in time",
        "plain": None,
    }
    times = [c["at"] for c in states["cancelled"]["statusHistory"]]
    assert times == sorted(times)


async def test_an_order_with_a_fulfilment_cannot_be_cancelled(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    order = await place(shop, [(goods["mug"], 2)], "fulfil-key-12")
    await fulfil(
        shop, boss, orderId=order["id"], lines=[{"lineId": order["lines"][0]["id"], "quantity": 1}]
    )

    refused = (await shop.query(CANCEL, {"input": {"orderId": order["id"]}}, token=boss)).data[
        "orderCancel"
    ]

    assert refused == {
        "order": None,
        "userErrors": [{"field": ["orderId"], "code": "INVALID_TRANSITION"}],
    }
    assert await stock(db, goods["mug"]) == 98  # nothing released, nothing refunded
    detail = (await shop.query(DETAIL, {"id": order["id"]}, token=boss)).data["order"]
    assert detail["status"] == "PAID" and detail["fulfillmentStatus"] == "PARTIALLY_FULFILLED"


async def test_my_orders_with_lines_fulfilments_and_history_cost_the_same_for_1_10_and_50(
    shop: AppClient, goods: dict[str, MadeProduct], db: Database
) -> None:
    boss = await staff_token(shop, db)
    ann = await customer_token(shop, "ann@example.com")
    placed = [
        await place(shop, [(goods["mug"], 2), (goods["pen"], 1)], f"budget-order-{i}", token=ann)
        for i in range(50)
    ]
    for order in placed[::3]:  # some partly shipped, with tracking
        await fulfil(
            shop,
            boss,
            orderId=order["id"],
            lines=[{"lineId": order["lines"][0]["id"], "quantity": 1}],
            tracking={"number": "T1"},
        )

    counts = {}
    for n in (1, 10, 50):
        result = await shop.query(MY_ORDERS, {"n": n}, token=ann)
        edges = result.data["me"]["orders"]["edges"]
        assert len(edges) == n
        assert all(len(e["node"]["statusHistory"]) == 2 for e in edges)
        counts[n] = result.statements
    shipped = sum(bool(e["node"]["fulfillments"]) for e in edges)
    staff_read = await shop.query(DETAIL, {"id": placed[0]["id"]}, token=boss)

    assert shipped == 17
    # the customer, the orders, their lines, their fulfilments, their status history
    assert counts == {1: 5, 10: 5, 50: 5}
    # staff's order(id): the viewer, the order, its lines, fulfilments, history
    assert staff_read.statements == 5


@pytest.mark.filterwarnings("ignore:.*expression-based index:UserWarning")
async def test_the_embedded_sqlite_stack_also_never_overfulfils(tmp_path: Path) -> None:
    # given: the embedded mode (SQLite file, in-process Redis), migrated, one paid order
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    embedded = Settings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        database_url=url,
        data_dir=str(tmp_path),
        pii_index_key=SecretStr(TEST_PII_INDEX_KEY),  # tests.shop.staff_token finds by it
        expose_statement_count=True,
        rate_limit_capacity=1e9,
        rate_limit_restore_rate=1e9,
        **FAST_PASSWORDS,
    )
    async with running_app(embedded, gateway=SandboxGateway()) as shop:
        db = shop.container.db
        mug = await CatalogFactory(db).product("Mug", prices=[1200], stock=[10])
        boss = await staff_token(shop, db)
        order = await place(shop, [(mug, 5)], "sqlite-fulfil-1")
        line = order["lines"][0]["id"]

        # when: four fulfilments of 2 units each at once, then two of everything left
        results = await asyncio.gather(
            *(
                fulfil(shop, boss, orderId=order["id"], lines=[{"lineId": line, "quantity": 2}])
                for _ in range(4)
            )
        )
        rest = await asyncio.gather(*(fulfil(shop, boss, orderId=order["id"]) for _ in range(2)))
        detail = (await shop.query(DETAIL, {"id": order["id"]}, token=boss)).data["order"]

    # then
    codes = sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in results)
    assert codes == ["FULFILLMENT_QUANTITY_EXCEEDED"] * 2 + ["OK"] * 2
    assert sorted(r["userErrors"][0]["code"] if r["userErrors"] else "OK" for r in rest) == [
        "INVALID_TRANSITION",
        "OK",
    ]
    shipped = [i["quantity"] for f in detail["fulfillments"] for i in f["fulfillmentLineItems"]]
    assert sorted(shipped) == [1, 2, 2] and detail["status"] == "FULFILLED"
    assert [c["status"] for c in detail["statusHistory"]] == [
        "PENDING_PAYMENT",
        "PAID",
        "FULFILLED",
    ]
