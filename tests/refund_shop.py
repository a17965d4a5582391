"""Helpers for the refund, return and shopper-cancel tests: paid orders, fulfilments,
what the database and the gateway hold afterwards."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from domain.payments import RefundResult
from integrations.sandbox_gateway import SandboxGateway
from persistence.db import Database
from persistence.tables import gift_cards, order_refunds, orders, outbox
from schema.global_id import decode_gid
from tests.client import AppClient
from tests.factories import MadeProduct
from tests.shop import ready_cart

CHECKOUT = """mutation($input: CheckoutCompleteInput!) { checkoutComplete(input: $input) {
  order { id status statusToken lines { id sku quantity }
          cost { totalAmount { amount } checkoutChargeAmount { amount } } }
  userErrors { code } } }"""
FULFIL = """mutation($input: OrderFulfillInput!) { orderFulfill(input: $input) {
  order { status } userErrors { field code } } }"""
REFUND_FIELDS = """id status amount { amount } giftCardAmount { amount } cardAmount { amount }
  lines { lineId quantity } shipping reason createdAt restocked"""
ORDER_FIELDS = f"""id status totalRefunded {{ amount currencyCode }}
  refunds {{ {REFUND_FIELDS} }}
  returns {{ id status lines {{ lineId quantity }} reason declineReason createdAt }}
  statusHistory {{ status }} cancelReason"""
REFUND = f"""mutation($input: OrderRefundInput!) {{ orderRefund(input: $input) {{
  order {{ {ORDER_FIELDS} }} refund {{ {REFUND_FIELDS} }} userErrors {{ field code message }} }} }}"""
ORDER = f"query($id: ID!) {{ order(id: $id) {{ {ORDER_FIELDS} }} }}"


class RefundingGateway(SandboxGateway):
    """The sandbox, counting refund calls; `refuse` makes the bank say no, `no_answer`
    makes it keep silent (the outcome unknown), without refunding either way."""

    def __init__(self) -> None:
        super().__init__()
        self.refund_calls: list[tuple[str, int, str]] = []
        self.refuse = False
        self.no_answer = False

    async def refund(
        self, payment_id: str, amount: int, currency_code: str, idempotency_key: str
    ) -> RefundResult:
        self.refund_calls.append((payment_id, amount, idempotency_key))
        if self.refuse:
            return RefundResult(None, False)
        if self.no_answer:
            return RefundResult(None, False, pending=True)
        return await super().refund(payment_id, amount, currency_code, idempotency_key)


async def place(
    client: AppClient,
    lines: list[tuple[MadeProduct, int]],
    key: str,
    token: str | None = None,
    method: str | None = "pm_card_visa",
    gift_card_codes: list[str] | None = None,
) -> dict[str, Any]:
    cart = await ready_cart(client, lines, token=token)
    if gift_card_codes:
        applied = await client.query(
            """mutation($input: CartGiftCardCodesUpdateInput!) {
               cartGiftCardCodesUpdate(input: $input) { userErrors { code } } }""",
            {"input": {"cartId": cart, "giftCardCodes": gift_card_codes}},
            token=token,
        )
        assert applied.data["cartGiftCardCodesUpdate"]["userErrors"] == []
    fields: dict[str, Any] = {"cartId": cart, "idempotencyKey": key}
    if method is not None:
        fields["paymentMethod"] = method
    result = await client.query(CHECKOUT, {"input": fields}, token=token)
    order: dict[str, Any] = result.data["checkoutComplete"]["order"]
    return order


async def fulfil(client: AppClient, staff: str, order_id: str, **fields: Any) -> dict[str, Any]:
    result = await client.query(FULFIL, {"input": {"orderId": order_id, **fields}}, token=staff)
    payload: dict[str, Any] = result.data["orderFulfill"]
    assert payload["userErrors"] == [], payload
    return payload


async def refund(client: AppClient, staff: str | None, **fields: Any) -> dict[str, Any]:
    fields.setdefault("idempotencyKey", "refund-key-1")
    result = await client.query(REFUND, {"input": fields}, token=staff)
    assert result.errors == [], result.errors
    payload: dict[str, Any] = result.data["orderRefund"]
    return payload


async def read_order(client: AppClient, token: str, order_id: str) -> dict[str, Any]:
    result = await client.query(ORDER, {"id": order_id}, token=token)
    order: dict[str, Any] = result.data["order"]
    return order


async def payment_of(db: Database, order_id: str) -> tuple[str, int]:
    """(the gateway's payment id, orders.refunded_total) of an order, by its global id."""
    public_id = decode_gid(order_id)[1]
    async with db.reader.connect() as connection:
        row = (
            await connection.execute(
                select(orders.c.payment_id, orders.c.refunded_total).where(
                    orders.c.public_id == public_id
                )
            )
        ).one()
    return str(row.payment_id), int(row.refunded_total)


async def refund_rows(db: Database) -> list[tuple[str, int, int, int]]:
    """(status, amount, gift card part, card part) of every stored refund, in id order."""
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(
                order_refunds.c.status,
                order_refunds.c.amount,
                order_refunds.c.gift_card_amount,
                order_refunds.c.card_amount,
            ).order_by(order_refunds.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def card_balance(db: Database) -> int:
    async with db.reader.connect() as connection:
        return int((await connection.execute(select(gift_cards.c.balance))).scalar_one())


async def events(db: Database, *topics: str) -> list[tuple[str, dict[str, Any]]]:
    async with db.reader.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.topic, outbox.c.payload)
            .where(outbox.c.topic.in_(topics))
            .order_by(outbox.c.id)
        )
        return [(row.topic, row.payload) for row in rows]
