"""The embedded mode (SQLite file, in-process Redis) runs the account lifecycle too:
verification, reset (conditional UPDATE ... RETURNING on SQLite), erasure."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from persistence.migrate import upgrade
from settings import Settings
from tests.account_mail import DELETE, ME, RECOVER, RESET, VERIFY, mailed_code, quick_mail
from tests.client import LOG_IN, customer_token, running_app
from tests.conftest import FAST_PASSWORDS, TEST_PII_KEY


async def test_verify_reset_and_erase_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    await upgrade(url)
    settings = Settings(
        environment="development",
        database_url=url,
        data_dir=str(tmp_path),
        pii_encryption_keys=SecretStr(TEST_PII_KEY),
        run_worker_in_process=False,  # the test runs the mail consumer itself
        **FAST_PASSWORDS,
    )

    async with running_app(quick_mail(settings)) as client:
        old = await customer_token(client, "ann@example.com")
        verification = await mailed_code(client, "email_verification", "ann@example.com")
        verified = await client.query(VERIFY, {"token": verification})
        await client.query(RECOVER, {"email": "ann@example.com"})
        code = await mailed_code(client, "password_reset", "ann@example.com")
        reset = await client.query(RESET, {"token": code, "password": "a new password"})
        again = await client.query(RESET, {"token": code, "password": "another one!"})
        new = reset.data["customerReset"]["customerAccessToken"]["accessToken"]
        old_me = await client.query(ME, token=old)
        deleted = await client.query(DELETE, {"password": "a new password"}, token=new)
        login = await client.query(
            LOG_IN, {"email": "ann@example.com", "password": "a new password"}
        )

    assert verified.data["customerEmailVerify"]["customer"]["emailVerified"] is True
    assert reset.data["customerReset"]["userErrors"] == []
    assert [e["code"] for e in again.data["customerReset"]["userErrors"]] == ["INVALID_TOKEN"]
    assert old_me.data["me"] is None
    assert deleted.data["customerDelete"]["userErrors"] == []
    assert [e["code"] for e in login.data["customerAccessTokenCreate"]["userErrors"]] == [
        "INVALID_CREDENTIALS"
    ]
