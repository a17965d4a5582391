"""Account tokens in SQL, inside the caller's transaction: the statements that
persistence/accounts/customers.py composes with its own (a reset redeems a token and
sets a password in one transaction).

Redeeming is one conditional UPDATE (`used_at IS NULL AND expires_at > now`): of two
concurrent redemptions of one token, PostgreSQL makes the second wait for the first's
row lock, re-checks the condition and finds it used, so exactly one wins.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.account_tokens import IssuedToken, TokenPurpose
from persistence.tables import account_tokens


async def insert_token(
    connection: AsyncConnection,
    customer_id: int,
    purpose: TokenPurpose,
    token: IssuedToken,
    email_encrypted: str | None = None,
) -> None:
    """Store the token's digest; a digest stored already (a redelivered event) is kept."""
    dialect: Any = postgresql if connection.dialect.name == "postgresql" else sqlite
    await connection.execute(
        dialect.insert(account_tokens)
        .values(
            customer_id=customer_id,
            purpose=purpose.value,
            token_hash=token.digest,
            email_encrypted=email_encrypted,
            expires_at=token.expires_at,
        )
        .on_conflict_do_nothing(index_elements=["token_hash"])
    )


async def void_open_tokens(
    connection: AsyncConnection, customer_id: int, purpose: TokenPurpose
) -> None:
    """Mark the customer's unused tokens of this purpose used: a newer one replaces them."""
    await connection.execute(
        update(account_tokens)
        .where(
            account_tokens.c.customer_id == customer_id,
            account_tokens.c.purpose == purpose.value,
            account_tokens.c.used_at.is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )


async def redeem_token(
    connection: AsyncConnection, purpose: TokenPurpose, digest: str
) -> RowMapping | None:
    """Use the token if it is open: its row (customer_id, email_encrypted), else None."""
    now = datetime.now(UTC)
    return (
        (
            await connection.execute(
                update(account_tokens)
                .where(
                    account_tokens.c.token_hash == digest,
                    account_tokens.c.purpose == purpose.value,
                    account_tokens.c.used_at.is_(None),
                    account_tokens.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(account_tokens.c.customer_id, account_tokens.c.email_encrypted)
            )
        )
        .mappings()
        .first()
    )


async def token_is_open(connection: AsyncConnection, digest: str) -> bool:
    found = await connection.execute(
        select(account_tokens.c.id).where(
            account_tokens.c.token_hash == digest,
            account_tokens.c.used_at.is_(None),
            account_tokens.c.expires_at > datetime.now(UTC),
        )
    )
    return found.first() is not None


async def delete_tokens_of(connection: AsyncConnection, customer_id: int) -> None:
    await connection.execute(
        delete(account_tokens).where(account_tokens.c.customer_id == customer_id)
    )
