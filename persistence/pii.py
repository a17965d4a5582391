"""Personal data encrypted at rest with Fernet (AES-128-CBC + HMAC), keys rotatable, and a
keyed blind index for the one value looked up by equality (the customer's email).

PII_ENCRYPTION_KEYS holds comma-separated keys: the first encrypts, every one decrypts,
so a new key is put first, `python app.py pii-rotate` re-encrypts every value under it
(persistence/pii_rotation.py), and the old key is dropped after. PII_INDEX_KEY keys the
blind index: HMAC-SHA256 of the canonical email, so equal addresses meet in a unique
index without the address being stored; it cannot be rotated without decrypting every
email to recompute the index. Development generates both once and keeps them in its data
folder.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from domain.customers import canonical_email

KEY_FILE = "pii.key"
INDEX_KEY_FILE = "pii-index.key"
# Decrypted values kept per process for `decrypt_cached` (review author names on the
# listing screen): entries, each a token and a short name.
_CACHED_VALUES = 8_192


class PiiCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one PII encryption key is needed")
        self._newest = Fernet(keys[0].encode())
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        self._cache: OrderedDict[str, str] = OrderedDict()

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()

    def decrypt_cached(self, token: str) -> str:
        """`decrypt`, remembered for the values a hot read path shows again and again (a
        token names one value for good: a changed value is a new token)."""
        found = self._cache.get(token)
        if found is None:
            found = self._cache[token] = self.decrypt(token)
            if len(self._cache) > _CACHED_VALUES:
                self._cache.popitem(last=False)
        return found

    def rotated(self, token: str) -> str | None:
        """`token` re-encrypted under the newest key, or None when it already is."""
        try:
            self._newest.decrypt(token.encode())
        except InvalidToken:
            return self._fernet.rotate(token.encode()).decode()
        return None


class BlindIndex:
    """The stored stand-in for an email in look-ups and the unique index."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("a PII index key is needed")
        self._key = key.encode()

    def of_email(self, email: str) -> str:
        return self.of(canonical_email(email))

    def of(self, value: str) -> str:
        """A keyed pseudonym of any personal value (an address in a throttle's key): unlike
        a plain hash, nobody without the key can test a guess against it."""
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()


def pii_keys(configured: str | None, data_dir: str) -> list[str]:
    """Configured keys, else (development) the one kept in `data_dir`, made on first use."""
    if configured:
        return [key.strip() for key in configured.split(",") if key.strip()]
    return [kept_key(Path(data_dir) / KEY_FILE, lambda: Fernet.generate_key().decode())]


def pii_index_key(configured: str | None, data_dir: str) -> str:
    """The configured index key, else (development) the one kept in `data_dir`."""
    if configured:
        return configured.strip()
    return kept_key(Path(data_dir) / INDEX_KEY_FILE, lambda: secrets.token_urlsafe(32))


def kept_key(path: Path, make: Callable[[], str] = lambda: secrets.token_urlsafe(48)) -> str:
    """A development key: read from `path`, made there once (mode 0600) when missing. Every
    key the app falls back to outside production is kept this way."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()
