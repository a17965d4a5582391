"""Helpers for account tests: run the account-mail consumer, read the mails it recorded
(or an SMTP sink received) and the codes in them, and the account mutations' documents."""

from __future__ import annotations

import re

from sqlalchemy import select

from app import build_event_worker
from persistence.events.relay import OutboxRelay
from persistence.pii import PiiCipher
from persistence.tables import notifications
from settings import Settings
from tests.client import AppClient
from tests.conftest import TEST_PII_KEY

CODE = re.compile(r"code: (\S+)")

UPDATE = """mutation($input: CustomerUpdateInput!) { customerUpdate(input: $input) {
  customer { id email name emailVerified } customerAccessToken { accessToken }
  userErrors { field code message } } }"""
RECOVER = """mutation($email: String!) { customerRecover(input: {email: $email}) {
  userErrors { field code message } } }"""
RESET = """mutation($token: String!, $password: String!) {
  customerReset(input: {token: $token, password: $password}) {
    customer { id email } customerAccessToken { accessToken expiresAt }
    userErrors { field code message } } }"""
VERIFY = """mutation($token: String!) { customerEmailVerify(input: {token: $token}) {
  customer { id email emailVerified } userErrors { field code message } } }"""
DELETE = """mutation($password: String!) { customerDelete(input: {currentPassword: $password}) {
  deletedCustomerId userErrors { field code message } } }"""
ME = "{ me { id email name emailVerified } }"


async def deliver_account_mail(client: AppClient) -> int:
    """Relay the outbox and let the account-mail consumer handle everything waiting:
    how many events it handled."""
    container = client.container
    await OutboxRelay(container.db, container.events_redis).drain()
    worker = build_event_worker(container)
    [consumer] = [c for c in worker.consumers if c.group == "account-mail"]
    await consumer.ensure_groups()
    handled = 0
    while count := await consumer.poll_once():
        handled += count
    return handled


async def recorded_mails(client: AppClient, kind: str) -> list[tuple[str, str]]:
    """(recipient, body) of the recorded notifications of this kind, oldest first."""
    cipher = PiiCipher([TEST_PII_KEY])
    async with client.container.db.reader.connect() as connection:
        rows = (
            await connection.execute(
                select(notifications.c.recipient_encrypted, notifications.c.body_encrypted)
                .where(notifications.c.kind == kind)
                .order_by(notifications.c.id)
            )
        ).all()
    return [(cipher.decrypt(to), cipher.decrypt(body)) for to, body in rows]


def code_in(body: str) -> str:
    found = CODE.search(body)
    assert found is not None, body
    return found.group(1)


async def mailed_code(client: AppClient, kind: str, to: str) -> str:
    """Deliver waiting account mails: the code in the newest one of `kind` to `to`."""
    await deliver_account_mail(client)
    bodies = [body for recipient, body in await recorded_mails(client, kind) if recipient == to]
    assert bodies, f"no {kind} mail to {to}"
    return code_in(bodies[-1])


def quick_mail(settings: Settings) -> Settings:
    """The test settings with a consumer that stops waiting for more mail at once."""
    return settings.model_copy(update={"event_consumer_block_ms": 20})
