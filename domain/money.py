"""Money as integer minor units; decimal strings only at the edge. No floats."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from domain.errors import ErrorCode, InvalidInput

# ISO 4217 exponents that differ from the usual 2.
_EXPONENTS = {"JPY": 0, "KRW": 0, "ISK": 0, "BHD": 3, "KWD": 3, "JOD": 3, "OMR": 3, "TND": 3}
MAX_AMOUNT_MINOR = 10**13
# What a client may write: ASCII digits with an optional point. Decimal() alone also takes
# exponents (1e999999999 overflows the context: a crash), underscores and any Unicode
# digit (Arabic-Indic, fullwidth), none of which is a price anyone types.
_AMOUNT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
MAX_AMOUNT_CHARS = 40


def currency_exponent(currency_code: str) -> int:
    return _EXPONENTS.get(currency_code, 2)


@dataclass(frozen=True, slots=True)
class Money:
    amount_minor: int
    currency_code: str

    @property
    def amount(self) -> Decimal:
        return Decimal(self.amount_minor).scaleb(-currency_exponent(self.currency_code))

    def to_decimal_string(self) -> str:
        exponent = currency_exponent(self.currency_code)
        return f"{self.amount:.{exponent}f}"


def parse_amount(text: str, currency_code: str, *, field: str) -> int:
    """Turn a client's decimal string ("19.99") into minor units (1999)."""
    text = text.strip() if isinstance(text, str) else ""
    try:
        if len(text) > MAX_AMOUNT_CHARS or _AMOUNT.fullmatch(text) is None:
            raise InvalidOperation
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidInput(
            f'{field} must be a decimal string such as "19.99"',
            code=ErrorCode.INVALID_PRICE,
            field=field,
        ) from None
    if not value.is_finite() or value < 0:
        raise InvalidInput(
            f"{field} must be zero or more", code=ErrorCode.INVALID_PRICE, field=field
        )
    minor = value.scaleb(currency_exponent(currency_code))
    if minor != minor.to_integral_value():
        raise InvalidInput(
            f"{field} has more decimal places than {currency_code} allows",
            code=ErrorCode.INVALID_PRICE,
            field=field,
        )
    if minor > MAX_AMOUNT_MINOR:
        raise InvalidInput(f"{field} is too large", code=ErrorCode.INVALID_PRICE, field=field)
    return int(minor)
