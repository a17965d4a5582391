"""The key order status tokens are derived with (domain.order_status).

ORDER_STATUS_TOKEN_KEY in production (at least 32 characters; every API process and the
worker need the same one, or their tokens differ). Development generates one once and
keeps it in its data folder, like the PII key.
"""

from __future__ import annotations

from pathlib import Path

from persistence.pii import kept_key

KEY_FILE = "status-token.key"


def status_token_key(configured: str | None, data_dir: str) -> bytes:
    if configured:
        return configured.strip().encode()
    return kept_key(Path(data_dir) / KEY_FILE).encode()
