"""PII at rest: Fernet, rotatable keys, and a development key kept in the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken

from persistence.pii import PiiCipher, pii_keys


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
