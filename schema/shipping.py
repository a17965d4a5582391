"""Shipping: the cart's delivery options, and the zones and methods staff set up."""

from __future__ import annotations

import strawberry

from domain import shipping
from domain.money import Money as DomainMoney
from schema.common import Money
from schema.errors import UserError
from schema.global_id import encode_gid


@strawberry.type(description="A delivery estimate in days, both ends inclusive.")
class DeliveryRange:
    min_days: int
    max_days: int


@strawberry.type(description="A way this cart may be delivered, for its destination and subtotal.")
class CartDeliveryOption:
    handle: str = strawberry.field(
        description="Stable and opaque; pass it to cartSelectedDeliveryOptionUpdate."
    )
    title: str
    estimated_cost: Money
    delivery_range: DeliveryRange

    @classmethod
    def of(cls, method: shipping.ShippingMethod, currency_code: str) -> CartDeliveryOption:
        return cls(
            handle=method.handle,
            title=method.title,
            estimated_cost=Money.of(DomainMoney(method.price, currency_code)),
            delivery_range=DeliveryRange(
                min_days=method.min_delivery_days, max_days=method.max_delivery_days
            ),
        )


@strawberry.type(description="Staff: a way to ship to the countries of a zone.")
class ShippingMethod:
    id: strawberry.ID
    handle: str = strawberry.field(description="What carts and orders call this method.")
    title: str
    price: Money
    min_subtotal: Money | None = strawberry.field(
        description="Offered from this subtotal on (inclusive); null: no lower bound."
    )
    max_subtotal: Money | None = strawberry.field(
        description="Offered up to this subtotal (inclusive); null: no upper bound."
    )
    delivery_range: DeliveryRange
    active: bool

    @classmethod
    def of(cls, method: shipping.ShippingMethod, currency_code: str) -> ShippingMethod:
        def money(amount: int | None) -> Money | None:
            return None if amount is None else Money.of(DomainMoney(amount, currency_code))

        assert method.id is not None  # staff only ever see stored methods
        return cls(
            id=strawberry.ID(encode_gid("ShippingMethod", method.id)),
            handle=method.handle,
            title=method.title,
            price=Money.of(DomainMoney(method.price, currency_code)),
            min_subtotal=money(method.min_subtotal),
            max_subtotal=money(method.max_subtotal),
            delivery_range=DeliveryRange(
                min_days=method.min_delivery_days, max_days=method.max_delivery_days
            ),
            active=method.active,
        )


@strawberry.type(description="Staff: countries shipped to alike; a country is in one zone.")
class ShippingZone:
    id: strawberry.ID
    name: str
    country_codes: list[str]
    methods: list[ShippingMethod]

    @classmethod
    def of(cls, zone: shipping.ShippingZone, currency_code: str) -> ShippingZone:
        return cls(
            id=strawberry.ID(encode_gid("ShippingZone", zone.id)),
            name=zone.name,
            country_codes=list(zone.country_codes),
            methods=[ShippingMethod.of(m, currency_code) for m in zone.methods],
        )


@strawberry.input
class CartSelectedDeliveryOptionUpdateInput:
    cart_id: strawberry.ID
    handle: str = strawberry.field(description="One of the cart's deliveryOptions' handles.")


@strawberry.input
class ShippingZoneCreateInput:
    name: str = strawberry.field(description="1 to 100 characters.")
    country_codes: list[str] = strawberry.field(
        description="ISO 3166-1 alpha-2, at most 250; none may be in another zone."
    )


@strawberry.input(description="Fields left out keep their values.")
class ShippingZoneUpdateInput:
    id: strawberry.ID
    name: str | None = None
    country_codes: list[str] | None = strawberry.field(
        default=None, description="Replaces the zone's countries."
    )


@strawberry.input
class ShippingMethodCreateInput:
    zone_id: strawberry.ID
    title: str = strawberry.field(description='1 to 100 characters, e.g. "Express".')
    price: str = strawberry.field(description='Decimal string, 0 or more, e.g. "9.99".')
    min_subtotal: str | None = strawberry.field(
        default=None, description='Offered from this subtotal on, e.g. "50.00" for free shipping.'
    )
    max_subtotal: str | None = strawberry.field(
        default=None, description="Offered up to this subtotal (inclusive)."
    )
    min_delivery_days: int = strawberry.field(default=3, description="0 to 365.")
    max_delivery_days: int = strawberry.field(default=7, description="0 to 365, at least min.")
    active: bool = True


@strawberry.input(description="Fields left out keep their values; null clears a subtotal bound.")
class ShippingMethodUpdateInput:
    id: strawberry.ID
    title: str | None = None
    price: str | None = None
    min_subtotal: str | None = strawberry.field(default=strawberry.UNSET)
    max_subtotal: str | None = strawberry.field(default=strawberry.UNSET)
    min_delivery_days: int | None = None
    max_delivery_days: int | None = None
    active: bool | None = None


@strawberry.input
class ShippingMethodDeleteInput:
    id: strawberry.ID


@strawberry.type
class ShippingZonePayload:
    shipping_zone: ShippingZone | None
    user_errors: list[UserError]


@strawberry.type
class ShippingMethodPayload:
    shipping_method: ShippingMethod | None
    user_errors: list[UserError]


@strawberry.type
class ShippingMethodDeletePayload:
    deleted_shipping_method_id: strawberry.ID | None
    user_errors: list[UserError]
