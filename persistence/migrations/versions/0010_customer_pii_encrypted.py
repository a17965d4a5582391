"""customers: email and name encrypted (Fernet), found by a keyed blind index

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03

`email` and `display_name` become `email_encrypted` and `display_name_encrypted`
(PII_ENCRYPTION_KEYS, the first key), and `email_index` (HMAC-SHA256 under PII_INDEX_KEY
of the canonical email, hex) takes over look-ups and uniqueness from the index on
lower(email). The keys come from `python app.py migrate` (config attributes `pii_keys`,
`pii_index_key`), else from the settings as the app reads them (environment, `.env`,
the data folder in development); a table with no rows needs none.

Rows that migration 0008 left with a non-canonical spelling because another account held
its canonical form cannot log in by email today (log in looks up the canonical form, the
other account's); they keep that property: their index is that of their raw spelling,
unique and never looked up, and their ids are logged.

Downgrading decrypts the values back into plain `email` and `display_name` (the keys are
needed again) and restores the index on lower(email).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import unicodedata
from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
_plain = sa.table(
    "customers",
    sa.column("id", sa.BigInteger),
    sa.column("email", sa.String),
    sa.column("display_name", sa.String),
)
_encrypted = sa.table(
    "customers",
    sa.column("id", sa.BigInteger),
    sa.column("email_encrypted", sa.Text),
    sa.column("email_index", sa.String),
    sa.column("display_name_encrypted", sa.Text),
)


def _canonical(email: str) -> str:
    # Frozen copy of domain.customers.canonical_email as of this revision.
    return unicodedata.normalize("NFKC", email).strip().lower()


def _index(key: bytes, text: str) -> str:
    # Frozen copy of persistence.pii.BlindIndex.of_email (on the canonical form).
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _keys() -> tuple[Any, bytes]:
    """(a MultiFernet, the index key) as the app would use them."""
    from cryptography.fernet import Fernet, MultiFernet

    attributes = context.config.attributes
    keys, index_key = attributes.get("pii_keys"), attributes.get("pii_index_key")
    if keys is None or index_key is None:
        from persistence.pii import pii_index_key, pii_keys
        from settings import Settings, revealed

        settings = Settings()
        keys = pii_keys(revealed(settings.pii_encryption_keys), settings.data_dir)
        index_key = pii_index_key(revealed(settings.pii_index_key), settings.data_dir)
    return MultiFernet([Fernet(key.encode()) for key in keys]), index_key.encode()


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("email_encrypted", sa.Text(), nullable=True))
        batch.add_column(sa.Column("email_index", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("display_name_encrypted", sa.Text(), nullable=True))
    rows = bind.execute(
        sa.select(_plain.c.id, _plain.c.email, _plain.c.display_name).order_by(_plain.c.id)
    ).all()
    if rows:
        fernet, index_key = _keys()
        # Canonical spellings first: they own their address (0008's rule).
        ordered = sorted(rows, key=lambda row: (_canonical(row.email) != row.email, row.id))
        taken: set[str] = set()
        kept: list[int] = []
        values: list[dict[str, Any]] = []
        for row in ordered:
            index = _index(index_key, _canonical(row.email))
            if index in taken:
                index = _index(index_key, "uncanonical:" + row.email)
                kept.append(row.id)
            taken.add(index)
            values.append(
                {
                    "row_id": row.id,
                    "email_encrypted": fernet.encrypt(row.email.encode()).decode(),
                    "email_index": index,
                    "display_name_encrypted": fernet.encrypt(row.display_name.encode()).decode(),
                }
            )
        bind.execute(
            _encrypted.update()
            .where(_encrypted.c.id == sa.bindparam("row_id"))
            .values(
                email_encrypted=sa.bindparam("email_encrypted"),
                email_index=sa.bindparam("email_index"),
                display_name_encrypted=sa.bindparam("display_name_encrypted"),
            ),
            values,
        )
        if kept:
            log.warning("customers %s keep a login-less email (another holds its form)", kept)
    op.drop_index("uq_customers_email_lower", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("email_encrypted", existing_type=sa.Text(), nullable=False)
        batch.alter_column("email_index", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("display_name_encrypted", existing_type=sa.Text(), nullable=False)
        batch.drop_column("email")
        batch.drop_column("display_name")
    op.create_index("uq_customers_email_index", "customers", ["email_index"], unique=True)


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("display_name", sa.String(length=120), nullable=True))
    rows = bind.execute(
        sa.select(
            _encrypted.c.id, _encrypted.c.email_encrypted, _encrypted.c.display_name_encrypted
        )
    ).all()
    if rows:
        fernet, _ = _keys()
        bind.execute(
            _plain.update()
            .where(_plain.c.id == sa.bindparam("row_id"))
            .values(email=sa.bindparam("email"), display_name=sa.bindparam("display_name")),
            [
                {
                    "row_id": row.id,
                    "email": fernet.decrypt(row.email_encrypted.encode()).decode(),
                    "display_name": fernet.decrypt(row.display_name_encrypted.encode()).decode(),
                }
                for row in rows
            ],
        )
    op.drop_index("uq_customers_email_index", table_name="customers")
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("email", existing_type=sa.String(length=320), nullable=False)
        batch.alter_column("display_name", existing_type=sa.String(length=120), nullable=False)
        batch.drop_column("email_encrypted")
        batch.drop_column("email_index")
        batch.drop_column("display_name_encrypted")
    op.create_index(
        "uq_customers_email_lower", "customers", [sa.literal_column("lower(email)")], unique=True
    )
