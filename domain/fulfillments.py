"""What staff may send to fulfil an order, checked before anything is written.

A line is named by its order and its position in the order (what `OrderLine.id` encodes),
so a line id says nothing about other orders. Unknown lines and lines of another order
answer alike (LINE_NOT_FOUND). Whether enough units remain is decided by the store, in
the transaction that records the fulfilment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from domain.errors import Rejected, UserError, UserErrorCode
from domain.orders import Order, Tracking
from domain.text_input import string_problem

TRACKING_TEXT_MAX = 255
TRACKING_URL_MAX = 2048
CANCEL_REASON_MAX = 500
MAX_FULFILLMENT_LINES = 250
EXPIRED_REASON = "payment not completed in time"


@dataclass(frozen=True, slots=True)
class LineRequest:
    order_public_id: str | None  # None: the id was not an order line id at all
    position: int  # 1-based, in the order's line order
    quantity: int


@dataclass(frozen=True, slots=True)
class FulfillmentRequest:
    lines: tuple[LineRequest, ...] | None = None  # None: every unit not yet fulfilled
    tracking: Tracking = field(default_factory=Tracking)


def wanted_units(order: Order, lines: tuple[LineRequest, ...] | None) -> dict[int, int] | None:
    """Units per order line id; Rejected (field `lines.<i>.…`) for what cannot be right."""
    if lines is None:
        return None
    if not lines:
        raise Rejected.one(
            UserErrorCode.INVALID, "name at least one line, or omit lines to fulfil all", "lines"
        )
    return line_units(order, lines, MAX_FULFILLMENT_LINES)


def line_units(order: Order, lines: Sequence[LineRequest], max_lines: int) -> dict[int, int]:
    """Units per order line id of the lines named (repeats add up); Rejected (field
    `lines.<i>.…`) for a line of another order or none at all, or a quantity below 1."""
    if len(lines) > max_lines:
        raise Rejected.one(UserErrorCode.TOO_MANY_LINES, f"at most {max_lines} lines", "lines")
    errors: list[UserError] = []
    units: dict[int, int] = {}
    for index, line in enumerate(lines):
        if line.order_public_id != order.public_id or not 1 <= line.position <= len(order.lines):
            errors.append(
                UserError(
                    UserErrorCode.LINE_NOT_FOUND,
                    "no such line in this order",
                    ("lines", str(index), "lineId"),
                )
            )
        elif line.quantity < 1:
            errors.append(
                UserError(
                    UserErrorCode.INVALID_QUANTITY,
                    "quantity must be at least 1",
                    ("lines", str(index), "quantity"),
                )
            )
        else:
            line_id = order.lines[line.position - 1].id
            units[line_id] = units.get(line_id, 0) + line.quantity
    if errors:
        raise Rejected(errors)
    return units


def checked_tracking(tracking: Tracking) -> Tracking:
    errors: list[UserError] = []
    company = _text(tracking.company, TRACKING_TEXT_MAX, ("tracking", "company"), errors)
    number = _text(tracking.number, TRACKING_TEXT_MAX, ("tracking", "number"), errors)
    url = _text(tracking.url, TRACKING_URL_MAX, ("tracking", "url"), errors)
    if url is not None and not _web_url(url):
        errors.append(
            UserError(
                UserErrorCode.INVALID_TRACKING_URL,
                "the tracking URL must be an http(s) URL with a host",
                ("tracking", "url"),
            )
        )
    if errors:
        raise Rejected(errors)
    return Tracking(company, number, url)


def checked_reason(reason: str | None) -> str | None:
    errors: list[UserError] = []
    checked = _text(reason, CANCEL_REASON_MAX, ("reason",), errors)
    if errors:
        raise Rejected(errors)
    return checked


def _text(
    value: str | None, max_length: int, field: tuple[str, ...], errors: list[UserError]
) -> str | None:
    """Stripped text, None when blank; a problem goes to `errors`."""
    if value is None:
        return None
    if len(value) > max_length:
        errors.append(UserError(UserErrorCode.TOO_LONG, f"at most {max_length} characters", field))
        return None
    problem = string_problem(value, max_length)
    if problem is not None:
        errors.append(UserError(UserErrorCode.INVALID, f"the text {problem}", field))
        return None
    return value.strip() or None


def _web_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)
