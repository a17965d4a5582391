"""Staff set up shipping zones and methods. A guest gets UNAUTHENTICATED, a customer
FORBIDDEN, both before anything is read or written."""

from __future__ import annotations

import strawberry

from domain import shipping
from domain.catalog_admin import ensure_staff
from domain.customers import Customer
from domain.errors import Rejected, UserErrorCode
from domain.shipping_admin import KEEP, MethodChanges, MethodDraft, ShippingAdmin
from schema.context import Info
from schema.global_id import encode_gid, int_gid_or_none
from schema.refusals import refusals_as
from schema.shipping import (
    ShippingMethod,
    ShippingMethodCreateInput,
    ShippingMethodDeleteInput,
    ShippingMethodDeletePayload,
    ShippingMethodPayload,
    ShippingMethodUpdateInput,
    ShippingZone,
    ShippingZoneCreateInput,
    ShippingZonePayload,
    ShippingZoneUpdateInput,
)


@strawberry.type
class ShippingAdminMutation:
    @strawberry.mutation(description="Staff: a new shipping zone; it has no methods yet.")
    @refusals_as(ShippingZonePayload)
    async def shipping_zone_create(
        self, info: Info, input: ShippingZoneCreateInput
    ) -> ShippingZonePayload:
        staff, admin = await _staff(info)
        zone = await admin.create_zone(staff, input.name, input.country_codes)
        return ShippingZonePayload(shipping_zone=_zone(info, zone), user_errors=[])

    @strawberry.mutation(description="Staff: rename a zone or replace its countries.")
    @refusals_as(ShippingZonePayload)
    async def shipping_zone_update(
        self, info: Info, input: ShippingZoneUpdateInput
    ) -> ShippingZonePayload:
        staff, admin = await _staff(info)
        zone = await admin.update_zone(
            staff, _zone_id(input.id, "id"), input.name, input.country_codes
        )
        return ShippingZonePayload(shipping_zone=_zone(info, zone), user_errors=[])

    @strawberry.mutation(description="Staff: add a method to a zone.")
    @refusals_as(ShippingMethodPayload)
    async def shipping_method_create(
        self, info: Info, input: ShippingMethodCreateInput
    ) -> ShippingMethodPayload:
        staff, admin = await _staff(info)
        draft = MethodDraft(
            zone_id=_zone_id(input.zone_id, "zoneId"),
            title=input.title,
            price=input.price,
            min_subtotal=input.min_subtotal,
            max_subtotal=input.max_subtotal,
            min_delivery_days=input.min_delivery_days,
            max_delivery_days=input.max_delivery_days,
            active=input.active,
        )
        method = await admin.create_method(staff, draft)
        return ShippingMethodPayload(shipping_method=_method(info, method), user_errors=[])

    @strawberry.mutation(description="Staff: change a method; carts see it on their next read.")
    @refusals_as(ShippingMethodPayload)
    async def shipping_method_update(
        self, info: Info, input: ShippingMethodUpdateInput
    ) -> ShippingMethodPayload:
        staff, admin = await _staff(info)
        changes = MethodChanges(
            title=input.title,
            price=input.price,
            min_subtotal=KEEP if input.min_subtotal is strawberry.UNSET else input.min_subtotal,
            max_subtotal=KEEP if input.max_subtotal is strawberry.UNSET else input.max_subtotal,
            min_delivery_days=input.min_delivery_days,
            max_delivery_days=input.max_delivery_days,
            active=input.active,
        )
        method = await admin.update_method(staff, _method_id(input.id), changes)
        return ShippingMethodPayload(shipping_method=_method(info, method), user_errors=[])

    @strawberry.mutation(
        description="Staff: delete a method; carts that chose it fall back to the cheapest, "
        "orders keep its title and handle."
    )
    @refusals_as(ShippingMethodDeletePayload)
    async def shipping_method_delete(
        self, info: Info, input: ShippingMethodDeleteInput
    ) -> ShippingMethodDeletePayload:
        staff, admin = await _staff(info)
        method = await admin.delete_method(staff, _method_id(input.id))
        assert method.id is not None
        deleted = strawberry.ID(encode_gid("ShippingMethod", method.id))
        return ShippingMethodDeletePayload(deleted_shipping_method_id=deleted, user_errors=[])


async def _staff(info: Info) -> tuple[Customer, ShippingAdmin]:
    return ensure_staff(await info.context.require_viewer()), info.context.shipping_admin


def _zone(info: Info, zone: shipping.ShippingZone) -> ShippingZone:
    return ShippingZone.of(zone, info.context.settings.currency_code)


def _method(info: Info, method: shipping.ShippingMethod) -> ShippingMethod:
    return ShippingMethod.of(method, info.context.settings.currency_code)


def _zone_id(value: strawberry.ID, field: str) -> int:
    key = int_gid_or_none(value, "ShippingZone")
    if key is None:
        raise Rejected.one(UserErrorCode.SHIPPING_ZONE_NOT_FOUND, "no such shipping zone", field)
    return key


def _method_id(value: strawberry.ID) -> int:
    key = int_gid_or_none(value, "ShippingMethod")
    if key is None:
        raise Rejected.one(UserErrorCode.SHIPPING_METHOD_NOT_FOUND, "no such shipping method", "id")
    return key
