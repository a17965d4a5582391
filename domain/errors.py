"""Business error codes and the exceptions that carry them to the API edge.

Two kinds: `ErrorCode` for protocol-level GraphQL errors (bad arguments, no
authentication), and `UserErrorCode` for business failures a mutation reports in
its payload's `userErrors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    BAD_USER_INPUT = "BAD_USER_INPUT"
    INVALID_ID = "INVALID_ID"
    INVALID_CURSOR = "INVALID_CURSOR"
    INVALID_PAGE_SIZE = "INVALID_PAGE_SIZE"
    INVALID_PRICE = "INVALID_PRICE"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    FORBIDDEN = "FORBIDDEN"
    THROTTLED = "THROTTLED"
    # A subscription's object does not exist or is not the caller's (no hint which).
    NOT_FOUND = "NOT_FOUND"
    SUBSCRIPTION_LIMIT_REACHED = "SUBSCRIPTION_LIMIT_REACHED"


class DomainError(Exception):
    """A failure the client caused and can fix; its message is safe to show."""

    code: ErrorCode = ErrorCode.BAD_USER_INPUT

    def __init__(self, message: str, *, code: ErrorCode | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class InvalidInput(DomainError):
    code = ErrorCode.BAD_USER_INPUT


class UnauthenticatedError(DomainError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, message: str = "sign in first: send Authorization: Bearer <token>") -> None:
        super().__init__(message)


class ForbiddenError(DomainError):
    code = ErrorCode.FORBIDDEN

    def __init__(self, message: str = "staff only") -> None:
        super().__init__(message)


class ThrottledError(DomainError):
    """Too many failed attempts from this client: refused until the window ends."""

    code = ErrorCode.THROTTLED


class ServiceUnavailable(DomainError):
    """A backing service (Redis) failed where there is no safe fallback."""

    code = ErrorCode.SERVICE_UNAVAILABLE

    def __init__(self, message: str = "a backing service is unavailable; retry shortly") -> None:
        super().__init__(message)


class UserErrorCode(StrEnum):
    BLANK = "BLANK"
    INVALID = "INVALID"
    TOO_SHORT = "TOO_SHORT"
    TOO_LONG = "TOO_LONG"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_ACCESS_TOKEN = "INVALID_ACCESS_TOKEN"
    THROTTLED = "THROTTLED"
    INVALID_TOKEN = "INVALID_TOKEN"  # a reset or verification token: unknown, used or expired
    CART_NOT_FOUND = "CART_NOT_FOUND"
    INVALID_MERCHANDISE = "INVALID_MERCHANDISE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    TOO_MANY_LINES = "TOO_MANY_LINES"
    LINE_NOT_FOUND = "LINE_NOT_FOUND"
    INVALID_COUNTRY_CODE = "INVALID_COUNTRY_CODE"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"
    ALREADY_REVIEWED = "ALREADY_REVIEWED"
    INVALID_RATING = "INVALID_RATING"
    CART_EMPTY = "CART_EMPTY"
    MISSING_EMAIL = "MISSING_EMAIL"
    MISSING_SHIPPING_ADDRESS = "MISSING_SHIPPING_ADDRESS"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_DECLINED = "PAYMENT_DECLINED"
    INVALID_PAYMENT_METHOD = "INVALID_PAYMENT_METHOD"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    CHECKOUT_IN_PROGRESS = "CHECKOUT_IN_PROGRESS"
    CART_ALREADY_CHECKED_OUT = "CART_ALREADY_CHECKED_OUT"
    PAYMENT_PENDING = "PAYMENT_PENDING"
    ORDER_NOT_FOUND = "ORDER_NOT_FOUND"
    INVALID_TRANSITION = "INVALID_TRANSITION"
    REFUND_FAILED = "REFUND_FAILED"
    # Fulfilments (staff).
    FULFILLMENT_QUANTITY_EXCEEDED = "FULFILLMENT_QUANTITY_EXCEEDED"
    INVALID_TRACKING_URL = "INVALID_TRACKING_URL"
    # Catalog management (staff).
    SLUG_TAKEN = "SLUG_TAKEN"
    SKU_TAKEN = "SKU_TAKEN"
    INVALID_PRICE = "INVALID_PRICE"
    CATEGORY_NOT_FOUND = "CATEGORY_NOT_FOUND"
    VARIANT_NOT_FOUND = "VARIANT_NOT_FOUND"
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    # Shipping: the shopper's choice and checkout.
    DELIVERY_OPTION_NOT_AVAILABLE = "DELIVERY_OPTION_NOT_AVAILABLE"
    SHIPPING_NOT_AVAILABLE = "SHIPPING_NOT_AVAILABLE"
    # Shipping zones and methods (staff).
    SHIPPING_ZONE_NOT_FOUND = "SHIPPING_ZONE_NOT_FOUND"
    SHIPPING_METHOD_NOT_FOUND = "SHIPPING_METHOD_NOT_FOUND"
    COUNTRY_IN_ANOTHER_ZONE = "COUNTRY_IN_ANOTHER_ZONE"
    INVALID_SUBTOTAL_RANGE = "INVALID_SUBTOTAL_RANGE"
    INVALID_DELIVERY_RANGE = "INVALID_DELIVERY_RANGE"
    SHIPPING_METHOD_LIMIT_REACHED = "SHIPPING_METHOD_LIMIT_REACHED"
    # Address book.
    ADDRESS_NOT_FOUND = "ADDRESS_NOT_FOUND"
    ADDRESS_LIMIT_REACHED = "ADDRESS_LIMIT_REACHED"
    # Discount codes (why an entered code takes nothing off; see domain/discounts.py).
    DISCOUNT_NOT_FOUND = "DISCOUNT_NOT_FOUND"
    DISCOUNT_NOT_APPLICABLE = "DISCOUNT_NOT_APPLICABLE"
    DISCOUNT_EXPIRED = "DISCOUNT_EXPIRED"
    DISCOUNT_EXHAUSTED = "DISCOUNT_EXHAUSTED"
    DISCOUNT_MINIMUM_NOT_MET = "DISCOUNT_MINIMUM_NOT_MET"
    # Gift cards (see domain/gift_cards.py).
    GIFT_CARD_NOT_FOUND = "GIFT_CARD_NOT_FOUND"
    GIFT_CARD_EXPIRED = "GIFT_CARD_EXPIRED"
    GIFT_CARD_DISABLED = "GIFT_CARD_DISABLED"
    GIFT_CARD_CURRENCY_MISMATCH = "GIFT_CARD_CURRENCY_MISMATCH"
    GIFT_CARD_DEPLETED = "GIFT_CARD_DEPLETED"
    # The card paid less than the cart showed (another order used its balance meanwhile).
    GIFT_CARD_BALANCE_CHANGED = "GIFT_CARD_BALANCE_CHANGED"
    # checkoutComplete without a paymentMethod when gift cards do not pay it all.
    MISSING_PAYMENT_METHOD = "MISSING_PAYMENT_METHOD"
    # Discounts (staff).
    DISCOUNT_CODE_TAKEN = "DISCOUNT_CODE_TAKEN"
    # Refunds (staff), returns and the shopper's cancel (see domain/refunds.py, returns.py).
    REFUND_EXCEEDS_PAYMENT = "REFUND_EXCEEDS_PAYMENT"
    REFUND_QUANTITY_EXCEEDED = "REFUND_QUANTITY_EXCEEDED"
    REFUND_PENDING = "REFUND_PENDING"
    RETURN_NOT_FOUND = "RETURN_NOT_FOUND"
    RETURN_QUANTITY_EXCEEDED = "RETURN_QUANTITY_EXCEEDED"
    ORDER_ALREADY_FULFILLED = "ORDER_ALREADY_FULFILLED"


@dataclass(frozen=True, slots=True)
class UserError:
    code: UserErrorCode
    message: str
    field: tuple[str, ...] = ()


class Rejected(Exception):
    """A mutation refused for reasons the client can fix; nothing was written."""

    def __init__(self, errors: Sequence[UserError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = list(errors)

    @classmethod
    def one(cls, code: UserErrorCode, message: str, *field: str) -> Rejected:
        return cls([UserError(code, message, tuple(field))])
