"""Gift cards in SQL: issuing and disabling (each one transaction with its outbox event)
and look-ups by code digest or id (one statement each, on the reader)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import RowMapping, insert, select, update

from domain.events import GiftCardCreated, GiftCardDisabled
from domain.gift_card_desk import GIFT_CARDS_ORDERING
from domain.gift_cards import GiftCard
from domain.pagination import Page, PageRequest, encode_cursor
from persistence.cursor_keys import cursor_id
from persistence.db import Database, aware
from persistence.events.outbox import emit
from persistence.tables import gift_cards

_COLUMNS = (
    gift_cards.c.id,
    gift_cards.c.code_digest,
    gift_cards.c.last_characters,
    gift_cards.c.initial_balance,
    gift_cards.c.balance,
    gift_cards.c.currency_code,
    gift_cards.c.expires_at,
    gift_cards.c.enabled,
    gift_cards.c.note,
    gift_cards.c.created_at,
)


class SqlGiftCardStore:
    """Implements domain.gift_card_desk.GiftCardStore."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        digest: str,
        last_characters: str,
        initial_balance: int,
        currency_code: str,
        expires_at: datetime | None,
        note: str | None = None,
    ) -> GiftCard:
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        insert(gift_cards)
                        .values(
                            code_digest=digest,
                            last_characters=last_characters,
                            initial_balance=initial_balance,
                            balance=initial_balance,
                            currency_code=currency_code,
                            expires_at=expires_at,
                            note=note,
                        )
                        .returning(*_COLUMNS)
                    )
                )
                .mappings()
                .one()
            )
            await emit(connection, GiftCardCreated(row["id"], initial_balance, currency_code))
        return _card(row)

    async def disable(self, card_id: int) -> GiftCard | None:
        async with self._db.writer.begin() as connection:
            row = (
                (
                    await connection.execute(
                        update(gift_cards)
                        .where(gift_cards.c.id == card_id)
                        .values(enabled=False)
                        .returning(*_COLUMNS)
                    )
                )
                .mappings()
                .one_or_none()
            )
            if row is None:
                return None
            await emit(connection, GiftCardDisabled(row["id"], row["balance"]))
        return _card(row)

    async def by_digests(self, digests: Sequence[str]) -> Mapping[str, GiftCard]:
        async with self._db.primary_reader.connect() as connection:  # balances: money
            rows = (
                await connection.execute(
                    select(*_COLUMNS).where(gift_cards.c.code_digest.in_(list(digests)))
                )
            ).mappings()
            return {row["code_digest"]: _card(row) for row in rows}

    async def by_ids(self, ids: Sequence[int]) -> Mapping[int, GiftCard]:
        async with self._db.primary_reader.connect() as connection:  # balances: money
            rows = (
                await connection.execute(select(*_COLUMNS).where(gift_cards.c.id.in_(list(ids))))
            ).mappings()
            return {row["id"]: _card(row) for row in rows}

    async def page(self, request: PageRequest) -> Page[GiftCard]:
        statement = select(*_COLUMNS).order_by(gift_cards.c.id.desc()).limit(request.first + 1)
        if request.after is not None:
            statement = statement.where(gift_cards.c.id < cursor_id(request.after[0]))
        async with self._db.writer.connect() as connection:
            rows = (await connection.execute(statement)).mappings().all()
        return Page.from_rows(
            [_card(row) for row in rows],
            first=request.first,
            after=request.after,
            cursor_of=lambda card: encode_cursor(GIFT_CARDS_ORDERING, (card.id,)),
        )


def _card(row: RowMapping) -> GiftCard:
    return GiftCard(
        id=row["id"],
        last_characters=row["last_characters"],
        initial_balance=row["initial_balance"],
        balance=row["balance"],
        currency_code=row["currency_code"],
        expires_at=row["expires_at"],
        enabled=row["enabled"],
        note=row["note"],
        created_at=aware(row["created_at"]),
    )
