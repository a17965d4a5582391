"""PII at rest: Fernet, rotatable keys, and a development key kept in the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from pydantic import ValidationError

from persistence.pii import BlindIndex, PiiCipher, pii_index_key, pii_keys
from settings import Settings


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    written_before_rotation = PiiCipher([old]).encrypt("ann@example.com")

    rotated = PiiCipher([new, old])
    written_after = rotated.encrypt("bob@example.com")

    assert "ann@example.com" not in written_before_rotation
    assert rotated.decrypt(written_before_rotation) == "ann@example.com"
    assert PiiCipher([new]).decrypt(written_after) == "bob@example.com"
    with pytest.raises(InvalidToken):
        PiiCipher([old]).decrypt(written_after)


def test_configured_keys_are_split_and_development_keeps_one_key(tmp_path: Path) -> None:
    assert pii_keys(" a , b ", str(tmp_path)) == ["a", "b"]

    first = pii_keys(None, str(tmp_path / "var"))
    second = pii_keys(None, str(tmp_path / "var"))

    assert first == second and len(first) == 1
    assert (tmp_path / "var" / "pii.key").stat().st_mode & 0o777 == 0o600
    assert PiiCipher(first).decrypt(PiiCipher(second).encrypt("x")) == "x"


def test_the_blind_index_is_one_per_address_and_keyed() -> None:
    index = BlindIndex("k" * 32)
    fullwidth = "\uff22\uff4f\uff42@example.com"  # "Bob" in fullwidth letters

    spellings = {index.of_email(e) for e in ("bob@example.com", " BOB@Example.com", fullwidth)}

    assert len(spellings) == 1 and len(next(iter(spellings))) == 64
    assert "bob" not in next(iter(spellings))
    assert BlindIndex("j" * 32).of_email("bob@example.com") not in spellings
    assert index.of_email("bob2@example.com") not in spellings


def test_rotation_rewrites_only_what_an_older_key_encrypted() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    written_before = PiiCipher([old]).encrypt("ann@example.com")
    rotating = PiiCipher([new, old])

    rotated = rotating.rotated(written_before)

    assert rotated is not None and PiiCipher([new]).decrypt(rotated) == "ann@example.com"
    assert rotating.rotated(rotated) is None  # already under the newest key
    assert rotating.decrypt_cached(rotated) == rotating.decrypt_cached(rotated) == "ann@example.com"


def test_development_keeps_one_index_key_and_production_needs_a_long_one(tmp_path: Path) -> None:
    first = pii_index_key(None, str(tmp_path / "var"))

    assert pii_index_key(None, str(tmp_path / "var")) == first and len(first) >= 32
    assert (tmp_path / "var" / "pii-index.key").stat().st_mode & 0o777 == 0o600
    assert pii_index_key(" configured ", str(tmp_path)) == "configured"
    with pytest.raises(ValidationError, match="PII_INDEX_KEY must have at least 32"):
        Settings(_env_file=None, pii_index_key="short")
