"""userErrors: business failures a mutation reports next to its (unchanged) object."""

from __future__ import annotations

import strawberry

from domain import errors

# Registered in place (see schema/catalog.py's ProductStatus): the domain class itself.
strawberry.enum(errors.UserErrorCode, description="Why a mutation refused its input.")
UserErrorCode = errors.UserErrorCode

# The codes are the domain's (it cannot import strawberry), so their descriptions are
# attached here, to the strawberry definition the schema is built from.
_DESCRIPTIONS = {
    errors.UserErrorCode.CART_ALREADY_CHECKED_OUT: "checkoutComplete: the cart already became "
    "an order, placed by someone else (its buyer gets that order instead of this error); "
    "nothing was charged.",
    errors.UserErrorCode.PAYMENT_PENDING: "checkoutComplete: the gateway gave no answer in "
    "time, so the payment outcome is not known yet; the order is PENDING_PAYMENT. Retry "
    "with the same idempotency key (it never charges twice) or query the order.",
    errors.UserErrorCode.CHECKOUT_IN_PROGRESS: "checkoutComplete: a request with this "
    "idempotency key is still running; retry with the same key.",
    errors.UserErrorCode.ADDRESS_NOT_FOUND: "Address book: no address with this id in the "
    "signed-in customer's address book (the same answer for another customer's address).",
    errors.UserErrorCode.ADDRESS_LIMIT_REACHED: "customerAddressCreate: the address book "
    "already holds 50 addresses; delete one first. Nothing was saved.",
    errors.UserErrorCode.DISCOUNT_NOT_FOUND: "Discount codes: no discount has this code "
    "(codes are case-insensitive). discountUpdate / discountDeactivate: no discount has "
    "this id.",
    errors.UserErrorCode.DISCOUNT_NOT_APPLICABLE: "Discount codes: the discount is not active "
    "(deactivated, or not started yet) or nothing in the cart is in its scope.",
    errors.UserErrorCode.DISCOUNT_EXPIRED: "Discount codes: the discount's end date has passed.",
    errors.UserErrorCode.DISCOUNT_EXHAUSTED: "Discount codes: the usage limit is reached, or the "
    "discount is once per customer and this customer (or guest email) already used it.",
    errors.UserErrorCode.DISCOUNT_MINIMUM_NOT_MET: "Discount codes: the cart's subtotal, before "
    "discounts, is below the discount's minimum.",
    errors.UserErrorCode.GIFT_CARD_NOT_FOUND: "Gift cards: no gift card has this code.",
    errors.UserErrorCode.GIFT_CARD_EXPIRED: "Gift cards: the card's expiry date has passed.",
    errors.UserErrorCode.GIFT_CARD_DISABLED: "Gift cards: the store disabled this card.",
    errors.UserErrorCode.GIFT_CARD_CURRENCY_MISMATCH: "Gift cards: the card's currency is not "
    "the cart's.",
    errors.UserErrorCode.GIFT_CARD_DEPLETED: "Gift cards: the card has no balance left.",
    errors.UserErrorCode.GIFT_CARD_BALANCE_CHANGED: "checkoutComplete: a gift card's balance "
    "changed since the cart was priced (another order used it); read the cart again and "
    "retry with a new idempotency key. No order was placed.",
    errors.UserErrorCode.MISSING_PAYMENT_METHOD: "checkoutComplete: a paymentMethod is "
    "needed because the gift cards do not pay the whole total.",
    errors.UserErrorCode.DISCOUNT_CODE_TAKEN: "discountCreate / discountUpdate: another "
    "discount has this code (codes are case-insensitive).",
    errors.UserErrorCode.REFUND_EXCEEDS_PAYMENT: "orderRefund: more than is left of what the "
    "order paid (gift cards and card, less earlier refunds); nothing was refunded.",
    errors.UserErrorCode.REFUND_QUANTITY_EXCEEDED: "orderRefund: more units of a line than "
    "were bought less earlier refunds, or the shipping twice; nothing was refunded.",
    errors.UserErrorCode.REFUND_PENDING: "orderRefund: the gateway did not answer; the refund "
    "is reserved (PENDING). Retry with the same idempotency key: it never refunds twice.",
    errors.UserErrorCode.RETURN_NOT_FOUND: "Returns: no return has this id.",
    errors.UserErrorCode.RETURN_QUANTITY_EXCEEDED: "orderReturnRequest: more units of a line "
    "than were fulfilled within the return window, less those already returned or "
    "requested.",
    errors.UserErrorCode.ORDER_ALREADY_FULFILLED: "orderCancelRequest: some of the order has "
    "shipped; ask for a return instead.",
}
# strawberry.enum sets __strawberry_definition__ at run time; the class's type lacks it.
for _value in UserErrorCode.__strawberry_definition__.values:  # type: ignore[attr-defined]
    _value.description = _DESCRIPTIONS.get(errors.UserErrorCode(_value.value))


@strawberry.type(description="A business rule the input broke; nothing was changed.")
class UserError:
    field: list[str] | None = strawberry.field(description="Path to the offending input field.")
    code: UserErrorCode
    message: str

    @classmethod
    def of(cls, error: errors.UserError) -> UserError:
        return cls(field=list(error.field) or None, code=error.code, message=error.message)

    @classmethod
    def all(cls, rejected: errors.Rejected | None) -> list[UserError]:
        return [] if rejected is None else [cls.of(e) for e in rejected.errors]
