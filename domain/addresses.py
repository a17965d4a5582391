"""Postal addresses and the one set of rules every address obeys.

A cart's shipping address, checkout's address and the address book's entries are the
same record, checked by the same function: an address a customer may save is exactly an
address a cart takes, and the reverse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from domain.errors import Rejected, UserError, UserErrorCode

_COUNTRY = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class MailingAddress:
    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    province: str
    zip: str
    country_code: str
    phone: str


def check_country(code: str, field: tuple[str, ...]) -> str:
    code = code.strip().upper()
    if not _COUNTRY.match(code):
        raise Rejected(
            [UserError(UserErrorCode.INVALID_COUNTRY_CODE, "use an ISO 3166-1 alpha-2 code", field)]
        )
    return code


# (required, at most this many characters) per field.
ADDRESS_LIMITS = {
    "first_name": (True, 100),
    "last_name": (True, 100),
    "address1": (True, 200),
    "address2": (False, 200),
    "city": (True, 100),
    "province": (False, 100),
    "zip": (True, 20),
    "phone": (False, 30),
}
_GRAPHQL_NAMES = {"first_name": "firstName", "last_name": "lastName"}


def check_address(address: MailingAddress) -> MailingAddress:
    """The address trimmed, its country upper-cased; Rejected with one error per bad field
    (`address.<field>`: BLANK, TOO_LONG, INVALID_COUNTRY_CODE)."""
    errors: list[UserError] = []
    cleaned: dict[str, str] = {}
    for name, (required, limit) in ADDRESS_LIMITS.items():
        value = getattr(address, name).strip()
        path = ("address", _GRAPHQL_NAMES.get(name, name))
        if required and not value:
            errors.append(UserError(UserErrorCode.BLANK, f"{path[1]} is required", path))
        elif len(value) > limit:
            errors.append(
                UserError(UserErrorCode.TOO_LONG, f"{path[1]} has at most {limit} characters", path)
            )
        cleaned[name] = value
    try:
        country = check_country(address.country_code, ("address", "countryCode"))
    except Rejected as rejected:
        errors += rejected.errors
        country = address.country_code
    if errors:
        raise Rejected(errors)
    return MailingAddress(country_code=country, **cleaned)
