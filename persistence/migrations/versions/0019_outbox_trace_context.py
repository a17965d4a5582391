"""outbox trace context

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03

- outbox: trace_context, the W3C trace context (`traceparent`, and `tracestate` when
  there is one) of the traced request that wrote the event, or NULL. The relay copies it
  into the stream entry, so consumers link their spans to the originating trace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("trace_context", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("trace_context")
