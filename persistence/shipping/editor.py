"""Staff shipping writes: each one transaction with its outbox event.

A zone's row is locked (SELECT ... FOR UPDATE on PostgreSQL) before its countries or
methods change, so two edits of one zone run one after the other. Countries held by
another zone are looked up first to name them in the refusal; the primary key on the
country is the backstop when two zones race for one country (a unique violation,
answered as the same refusal, never a 500).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.events import ShippingMethodChanged, ShippingZoneChanged
from domain.shipping import ShippingMethod, ShippingZone
from domain.shipping_admin import (
    METHODS_PER_ZONE_MAX,
    MethodFields,
    ShippingConflict,
    ShippingConflictError,
)
from persistence.db import Database
from persistence.events.outbox import emit
from persistence.shipping.rates import method_from_row
from persistence.tables import shipping_methods, shipping_zone_countries, shipping_zones


class SqlShippingEditor:
    """Implements domain.shipping_admin.ShippingEditor."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_zone(self, name: str, country_codes: Sequence[str]) -> ShippingZone:
        try:
            async with self._db.writer.begin() as connection:
                await _refuse_taken(connection, country_codes, zone_id=None)
                zone_id = (
                    await connection.execute(
                        insert(shipping_zones).values(name=name).returning(shipping_zones.c.id)
                    )
                ).scalar_one()
                await _insert_countries(connection, zone_id, country_codes)
                await emit(connection, ShippingZoneChanged(zone=zone_id))
                return await _zone(connection, zone_id)
        except IntegrityError:
            raise ShippingConflictError(ShippingConflict.COUNTRY_TAKEN) from None

    async def update_zone(
        self, zone_id: int, name: str | None, country_codes: Sequence[str] | None
    ) -> ShippingZone:
        try:
            async with self._db.writer.begin() as connection:
                await _lock_zone(connection, zone_id)
                if name is not None:
                    await connection.execute(
                        update(shipping_zones)
                        .where(shipping_zones.c.id == zone_id)
                        .values(name=name, updated_at=func.now())
                    )
                if country_codes is not None:
                    await _refuse_taken(connection, country_codes, zone_id=zone_id)
                    await connection.execute(
                        delete(shipping_zone_countries).where(
                            shipping_zone_countries.c.zone_id == zone_id
                        )
                    )
                    await _insert_countries(connection, zone_id, country_codes)
                await emit(connection, ShippingZoneChanged(zone=zone_id))
                return await _zone(connection, zone_id)
        except IntegrityError:
            raise ShippingConflictError(ShippingConflict.COUNTRY_TAKEN) from None

    async def create_method(self, zone_id: int, fields: MethodFields) -> ShippingMethod:
        async with self._db.writer.begin() as connection:
            await _lock_zone(connection, zone_id)
            count = (
                await connection.execute(
                    select(func.count())
                    .select_from(shipping_methods)
                    .where(shipping_methods.c.zone_id == zone_id)
                )
            ).scalar_one()
            if count >= METHODS_PER_ZONE_MAX:
                raise ShippingConflictError(ShippingConflict.METHOD_LIMIT)
            row = (
                (
                    await connection.execute(
                        insert(shipping_methods)
                        .values(zone_id=zone_id, **_values(fields))
                        .returning(*shipping_methods.c)
                    )
                )
                .mappings()
                .one()
            )
            await emit(connection, ShippingMethodChanged(row["id"], zone_id, "created"))
        return method_from_row(row)

    async def update_method(
        self, method_id: int, revise: Callable[[ShippingMethod], MethodFields]
    ) -> ShippingMethod:
        async with self._db.writer.begin() as connection:
            current = await _locked_method(connection, method_id)
            fields = revise(current)
            row = (
                (
                    await connection.execute(
                        update(shipping_methods)
                        .where(shipping_methods.c.id == method_id)
                        .values(**_values(fields), updated_at=func.now())
                        .returning(*shipping_methods.c)
                    )
                )
                .mappings()
                .one()
            )
            await emit(connection, ShippingMethodChanged(method_id, row["zone_id"], "updated"))
        return method_from_row(row)

    async def delete_method(self, method_id: int) -> ShippingMethod:
        async with self._db.writer.begin() as connection:
            current = await _locked_method(connection, method_id)
            await connection.execute(
                delete(shipping_methods).where(shipping_methods.c.id == method_id)
            )
            assert current.zone_id is not None
            await emit(connection, ShippingMethodChanged(method_id, current.zone_id, "deleted"))
        return current


async def _lock_zone(connection: AsyncConnection, zone_id: int) -> None:
    found = (
        await connection.execute(
            select(shipping_zones.c.id).where(shipping_zones.c.id == zone_id).with_for_update()
        )
    ).first()
    if found is None:
        raise ShippingConflictError(ShippingConflict.ZONE_MISSING)


async def _locked_method(connection: AsyncConnection, method_id: int) -> ShippingMethod:
    row = (
        (
            await connection.execute(
                select(shipping_methods).where(shipping_methods.c.id == method_id).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ShippingConflictError(ShippingConflict.METHOD_MISSING)
    return method_from_row(row)


async def _refuse_taken(
    connection: AsyncConnection, country_codes: Sequence[str], zone_id: int | None
) -> None:
    if not country_codes:
        return
    query = select(shipping_zone_countries.c.country_code).where(
        shipping_zone_countries.c.country_code.in_(list(country_codes))
    )
    if zone_id is not None:
        query = query.where(shipping_zone_countries.c.zone_id != zone_id)
    taken = sorted((await connection.execute(query)).scalars().all())
    if taken:
        raise ShippingConflictError(ShippingConflict.COUNTRY_TAKEN, taken)


async def _insert_countries(
    connection: AsyncConnection, zone_id: int, country_codes: Sequence[str]
) -> None:
    if country_codes:
        await connection.execute(
            insert(shipping_zone_countries),
            [{"zone_id": zone_id, "country_code": code} for code in country_codes],
        )


def _values(fields: MethodFields) -> dict[str, Any]:
    return {
        "title": fields.title,
        "price": fields.price,
        "min_subtotal": fields.min_subtotal,
        "max_subtotal": fields.max_subtotal,
        "min_delivery_days": fields.min_delivery_days,
        "max_delivery_days": fields.max_delivery_days,
        "active": fields.active,
    }


async def _zone(connection: AsyncConnection, zone_id: int) -> ShippingZone:
    name = (
        await connection.execute(
            select(shipping_zones.c.name).where(shipping_zones.c.id == zone_id)
        )
    ).scalar_one()
    countries = (
        await connection.execute(
            select(shipping_zone_countries.c.country_code)
            .where(shipping_zone_countries.c.zone_id == zone_id)
            .order_by(shipping_zone_countries.c.country_code)
        )
    ).scalars()
    methods = (
        await connection.execute(
            select(shipping_methods)
            .where(shipping_methods.c.zone_id == zone_id)
            .order_by(shipping_methods.c.id)
        )
    ).mappings()
    return ShippingZone(
        zone_id, name, tuple(countries), tuple(method_from_row(row) for row in methods)
    )


async def read_zones(db: Database) -> list[ShippingZone]:
    """Every zone with its countries and methods, three statements per zone: for tools
    and tests, not for a request path."""
    async with db.primary_reader.connect() as connection:
        ids = (
            await connection.execute(select(shipping_zones.c.id).order_by(shipping_zones.c.id))
        ).scalars()
        return [await _zone(connection, zone_id) for zone_id in list(ids)]
