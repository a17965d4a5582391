"""Opaque global ids: base64 of `gid://shop/<Type>/<key>`, decoded and checked here.

The decoded text is client input like any other: it must be clean text (no control
characters, see domain.text_input), and an integer key is canonical ASCII digits that
fit PostgreSQL's bigint, so `²`, Arabic-Indic or fullwidth digits, leading zeros and
10,000-digit numbers are not ids (Python's isdigit() and int() accept all of them).
"""

from __future__ import annotations

import base64
import binascii
import functools

from domain.errors import ErrorCode, InvalidInput
from domain.text_input import is_clean

_PREFIX = "gid://shop/"
# Longer than any id we mint (a 64-character key): refused before decoding.
MAX_GID_LENGTH = 200
# 18 digits always fit a signed 64-bit integer (bigint); 19 may not.
_MAX_INT_KEY_DIGITS = 18


@functools.lru_cache(maxsize=65_536)
def encode_gid(type_name: str, key: int | str) -> str:
    # Pure and called for every object of every answer (a listing: ~120 times): the ids
    # a store shows most are one dictionary look-up away (about 20 MB when full).
    return base64.urlsafe_b64encode(f"{_PREFIX}{type_name}/{key}".encode()).rstrip(b"=").decode()


def decode_gid(value: str, *, field: str = "id") -> tuple[str, str]:
    """(type name, key) of a global id; InvalidInput when it is not one of ours."""
    if len(value) > MAX_GID_LENGTH:
        raise _invalid(field)
    try:
        raw = base64.urlsafe_b64decode((value + "=" * (-len(value) % 4)).encode("ascii")).decode()
    except (ValueError, binascii.Error, UnicodeError):
        raise _invalid(field) from None
    if not raw.startswith(_PREFIX) or not is_clean(raw):
        raise _invalid(field)
    type_name, _, key = raw[len(_PREFIX) :].partition("/")
    if not type_name or not key:
        raise _invalid(field)
    return type_name, key


def decode_int_gid(value: str, expected_type: str, *, field: str = "id") -> int:
    type_name, key = decode_gid(value, field=field)
    record_id = int_key(key)
    if type_name != expected_type or record_id is None:
        raise InvalidInput(
            f"{field} is not a valid {expected_type} id", code=ErrorCode.INVALID_ID, field=field
        )
    return record_id


def int_key(key: str) -> int | None:
    """The integer a decoded key spells in canonical ASCII digits, or None."""
    if not (0 < len(key) <= _MAX_INT_KEY_DIGITS and key.isascii() and key.isdigit()):
        return None
    if key[0] == "0" and key != "0":
        return None  # one id, one spelling: 007 is not 7
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
