"""customers: existing emails rewritten in the canonical form sign-up now stores

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

Sign-up, log in and the throttle now compare NFKC + lower-cased addresses
(domain.customers.canonical_email). Rows written before kept what the customer typed;
the unique index and lookups use the database's lower(), which in a C-collation
database leaves non-ASCII letters and fullwidth forms alone, so such an account could no
longer log in and a second account could take its address. Each row is rewritten in id
order; a row whose canonical form another account already holds keeps its spelling
(the index refuses the update) and is listed in the log for a person to resolve.
Downgrading keeps the canonical spellings: the originals are not recoverable, and every
older revision reads them correctly.
"""

from __future__ import annotations

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import IntegrityError

revision = "0008"
# 0007 lands on a sibling branch; the merge re-chains this onto it.
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
EMAIL_MAX = 320
customers = sa.table("customers", sa.column("id", sa.BigInteger), sa.column("email", sa.String))


def _canonical(email: str) -> str:
    # Frozen copy of domain.customers.canonical_email as of this revision.
    return unicodedata.normalize("NFKC", email).strip().lower()


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(customers.c.id, customers.c.email).order_by(customers.c.id))
    changes = [(row.id, _canonical(row.email)) for row in rows if _canonical(row.email) != row.email]
    kept: list[int] = []
    for customer_id, email in changes:
        if len(email) > EMAIL_MAX:  # NFKC can lengthen; such an address cannot sign up now
            kept.append(customer_id)
            continue
        try:
            with bind.begin_nested():
                bind.execute(
                    customers.update().where(customers.c.id == customer_id).values(email=email)
                )
        except IntegrityError:
            kept.append(customer_id)
    if kept:
        log.warning(
            "customers %s keep their email: its canonical form is another account's or too long", kept
        )


def downgrade() -> None:
    pass
