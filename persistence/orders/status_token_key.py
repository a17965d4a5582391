"""The key order status tokens are derived with (domain.order_status).

ORDER_STATUS_TOKEN_KEY in production (at least 32 characters; every API process and the
worker need the same one, or their tokens differ). Development generates one once and
keeps it in its data folder, like the PII key.
"""

from __future__ import annotations

import secrets
from pathlib import Path

KEY_FILE = "status-token.key"


def status_token_key(configured: str | None, data_dir: str) -> bytes:
    if configured:
        return configured.strip().encode()
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()
