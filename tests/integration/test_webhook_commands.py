"""The operator's webhook commands, run as `python app.py ...`: create (the secret shown
once, stored encrypted, usable to sign), list, disable, enable, redeliver; hostile
arguments get a one-line reason and a non-zero exit, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from domain.webhooks import OutgoingEvent
from persistence.db import Database
from persistence.pii import PiiCipher
from persistence.tables import partner_webhooks, webhook_deliveries
from persistence.webhooks.store import SqlWebhookStore
from tests.conftest import TEST_PII_KEY
from tests.e2e.server import cli, run_cli, server_env
from tests.integration.test_webhooks import make_partner


@pytest.fixture
def operator(database_url: str) -> dict[str, str]:
    return server_env(
        DATABASE_URL=database_url,
        PII_ENCRYPTION_KEYS=TEST_PII_KEY,
        WEBHOOK_ALLOW_PRIVATE_ADDRESSES="false",
    )


def refused(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = cli(cwd, env, *args)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr.strip().splitlines()[-1]


async def test_webhook_create_shows_the_secret_once_and_stores_it_encrypted(
    tmp_path: Path, operator: dict[str, str], db: Database, clean: None
) -> None:
    await make_partner(db, "Acme")
    env = {**operator, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true"}

    out = run_cli(
        tmp_path, env, "webhook-create", "--partner", "Acme",
        "--url", "http://127.0.0.1:8123/hooks", "--events", "OrderPaid,OrderFulfilled",
    )  # fmt: skip

    secret = out.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert "webhook 1 for Acme" in out and "OrderPaid, OrderFulfilled" in out
    async with db.reader.connect() as connection:
        [row] = (await connection.execute(select(partner_webhooks))).mappings()
    assert secret not in str(dict(row))  # at rest only as ciphertext
    assert PiiCipher([TEST_PII_KEY]).decrypt(row["secret_encrypted"]) == secret
    assert row["events"] == ["OrderPaid", "OrderFulfilled"]
    listed = run_cli(tmp_path, operator, "webhook-list")
    assert listed.startswith("1\tAcme\tenabled\tOrderPaid,OrderFulfilled\thttp://127.0.0.1:8123")
    assert secret not in listed


async def test_webhook_disable_enable_and_redeliver(
    tmp_path: Path, operator: dict[str, str], db: Database, clean: None
) -> None:
    await make_partner(db, "Acme")
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    hook = await store.create("Acme", "https://example.com/hooks", ["ProductUpdated"], "whsec_x")
    await store.enqueue([OutgoingEvent("evt_1.ProductUpdated", "ProductUpdated", "{}")], 60)
    async with db.writer.begin() as connection:
        await connection.execute(
            webhook_deliveries.update().values(status="failed", next_attempt_at=None)
        )

    assert "disabled" in run_cli(tmp_path, operator, "webhook-disable", "--id", str(hook.id))
    assert "disabled" in run_cli(tmp_path, operator, "webhook-list", "--partner", "Acme")
    assert "no enabled webhook" in refused(
        tmp_path, operator, "webhook-disable", "--id", str(hook.id)
    )
    assert "enabled" in run_cli(tmp_path, operator, "webhook-enable", "--id", str(hook.id))
    out = run_cli(tmp_path, operator, "webhook-redeliver", "--webhook", str(hook.id))
    assert out.startswith("1 deliveries queued again")
    async with db.reader.connect() as connection:
        [row] = (await connection.execute(select(webhook_deliveries))).mappings()
    assert row["status"] == "pending" and row["next_attempt_at"] is not None
    assert "nothing to redeliver" in refused(
        tmp_path, operator, "webhook-redeliver", "--webhook", str(hook.id)
    )


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--url", "http://localhost:8080/x"), "localhost resolves to"),  # DNS to loopback
        (("--url", "http://127.0.0.1/x"), "not a public address"),
        (("--url", "http://10.1.2.3/x"), "not a public address"),
        (("--url", "http://169.254.169.254/latest/meta-data/"), "not a public address"),
        (("--url", "http://[::1]/x"), "not a public address"),
        (("--url", "ftp://example.com/x"), "only http:// and https://"),
        (("--url", "https://example.com/" + "a" * 5000), "at most 2000 characters"),
        (("--url", "https://no-such-host.invalid/x"), "does not resolve"),
        (("--events", "OrderPaid,PasswordResetRequested"), "unknown 'PasswordResetRequested'"),
        (("--events", ",".join(["x" * 1000] * 50)), "at most 20 names"),
        (("--events", "OrderPaid," * 30), "at most 20 names"),
        (("--events", ""), "events: name one or more"),
        (("--partner", "Nobody"), "no active partner named 'Nobody'"),
        (("--partner", "x" * 10_000), "partner: not a partner name"),
    ],
)
async def test_webhook_create_refuses_hostile_arguments_with_a_reason(
    tmp_path: Path,
    operator: dict[str, str],
    db: Database,
    clean: None,
    args: tuple[str, str],
    reason: str,
) -> None:
    await make_partner(db, "Acme")
    # A public address literal: no DNS is needed for the arguments that are fine.
    given = {"--partner": "Acme", "--url": "https://93.184.215.14/hooks", "--events": "OrderPaid"}
    given[args[0]] = args[1]

    line = refused(tmp_path, operator, "webhook-create", *[x for kv in given.items() for x in kv])

    assert reason in line
    assert len(line) < 1_000  # a huge argument is not echoed back
    async with db.reader.connect() as connection:
        assert (await connection.execute(select(partner_webhooks))).all() == []


async def test_a_partner_has_at_most_twenty_enabled_webhooks(
    tmp_path: Path, operator: dict[str, str], db: Database, clean: None
) -> None:
    await make_partner(db, "Acme")
    store = SqlWebhookStore(db, PiiCipher([TEST_PII_KEY]))
    for n in range(20):
        await store.create("Acme", f"https://example.com/{n}", ["OrderPaid"], "whsec_x")

    line = refused(
        tmp_path, operator, "webhook-create", "--partner", "Acme",
        "--url", "https://93.184.215.14/hooks", "--events", "OrderPaid",
    )  # fmt: skip

    assert "20 enabled webhooks already" in line


@pytest.mark.parametrize("value", ["abc", "0", "-1", str(2**63), "9" * 5000])
def test_id_arguments_must_be_ids(tmp_path: Path, operator: dict[str, str], value: str) -> None:
    line = refused(tmp_path, operator, "webhook-disable", "--id", value)

    assert "not an id" in line and len(line) < 300
