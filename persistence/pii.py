"""Personal data encrypted at rest with Fernet (AES-128-CBC + HMAC), keys rotatable.

PII_ENCRYPTION_KEYS holds comma-separated keys: the first encrypts, every one decrypts,
so a new key is put first and the old one dropped once `pii-rotate` (a later chore) has
re-encrypted the rows. Development generates a key once and keeps it in its data folder.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

KEY_FILE = "pii.key"


class PiiCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one PII encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode()).decode()


def pii_keys(configured: str | None, data_dir: str) -> list[str]:
    """Configured keys, else (development) the one kept in `data_dir`, made on first use."""
    if configured:
        return [key.strip() for key in configured.split(",") if key.strip()]
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return [path.read_text().strip()]
