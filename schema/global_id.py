"""Opaque global ids: base64 of `gid://shop/<Type>/<key>`, decoded and checked here."""

from __future__ import annotations

import base64
import binascii

from domain.errors import ErrorCode, InvalidInput

_PREFIX = "gid://shop/"


def encode_gid(type_name: str, key: int | str) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{type_name}/{key}".encode()).rstrip(b"=").decode()


def decode_gid(value: str, *, field: str = "id") -> tuple[str, str]:
    """(type name, key) of a global id; InvalidInput when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise _invalid(field) from None
    if not raw.startswith(_PREFIX):
        raise _invalid(field)
    type_name, _, key = raw[len(_PREFIX) :].partition("/")
    if not type_name or not key:
        raise _invalid(field)
    return type_name, key


def decode_int_gid(value: str, expected_type: str, *, field: str = "id") -> int:
    type_name, key = decode_gid(value, field=field)
    if type_name != expected_type or not key.isdigit() or len(key) > 18:
        raise InvalidInput(
            f"{field} is not a valid {expected_type} id", code=ErrorCode.INVALID_ID, field=field
        )
    return int(key)


def _invalid(field: str) -> InvalidInput:
    return InvalidInput(f"{field} is not a valid global id", code=ErrorCode.INVALID_ID, field=field)


def int_gid_or_none(value: str, expected_type: str) -> int | None:
    """The key of a global id of `expected_type`, or None for anything else: for inputs
    where a wrong id is a business failure (a userError), not a malformed request."""
    try:
        return decode_int_gid(value, expected_type)
    except InvalidInput:
        return None


def str_gid_or_none(value: str, expected_type: str) -> str | None:
    try:
        type_name, key = decode_gid(value)
    except InvalidInput:
        return None
    return key if type_name == expected_type and len(key) <= 64 else None
