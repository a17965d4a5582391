"""The key gift card codes are digested with (domain.gift_cards.code_digest).

GIFT_CARD_CODE_KEY in production (at least 32 characters; every API process needs the
same one, and changing it makes every issued card unknown). Development generates one
once and keeps it in its data folder, like the order status token key.
"""

from __future__ import annotations

from pathlib import Path

from persistence.pii import kept_key

KEY_FILE = "gift-card-code.key"


def gift_card_code_key(configured: str | None, data_dir: str) -> bytes:
    if configured:
        return configured.strip().encode()
    return kept_key(Path(data_dir) / KEY_FILE).encode()
