"""One address, one account: compatibility forms and letter case name the same mailbox."""

from __future__ import annotations

from settings import Settings
from tests.client import LOG_IN, SIGN_UP, AppClient, running_app
from tests.conftest import FAST_PASSWORDS, TEST_REDIS_URL


def fullwidth(text: str) -> str:
    """The fullwidth form an East Asian keyboard types (U+FF01-U+FF5E for ASCII)."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


PLAIN = "bob@example.com"
FULLWIDTH = fullwidth("bob") + "@" + fullwidth("example") + "." + fullwidth("com")
ME = "{ me { email } }"


async def sign_up(client: AppClient, email: str) -> dict:
    result = await client.query(
        SIGN_UP, {"email": email, "password": "correct horse", "name": "Bob"}
    )
    return result.data["customerCreate"]


async def log_in(client: AppClient, email: str, password: str = "correct horse") -> dict:
    result = await client.query(LOG_IN, {"email": email, "password": password})
    return result.data["customerAccessTokenCreate"]


async def test_a_fullwidth_address_is_the_same_account(client: AppClient) -> None:
    first = await sign_up(client, PLAIN)

    again = await sign_up(client, FULLWIDTH)
    shouted = await sign_up(client, "BOB@Example.COM")
    by_plain = await log_in(client, PLAIN)
    by_fullwidth = await log_in(client, FULLWIDTH)
    by_fullwidth_upper = await log_in(client, fullwidth("BOB@EXAMPLE.COM"))

    assert first["userErrors"] == []
    assert [e["code"] for e in again["userErrors"]] == ["EMAIL_TAKEN"]
    assert [e["code"] for e in shouted["userErrors"]] == ["EMAIL_TAKEN"]
    for login in (by_plain, by_fullwidth, by_fullwidth_upper):
        assert login["userErrors"] == [] and login["customerAccessToken"]


async def test_an_account_made_with_a_compatibility_form_stores_the_plain_address(
    client: AppClient,
) -> None:
    created = await sign_up(client, "  " + fullwidth("ANN@Example") + ".com ")
    token = (await log_in(client, "ann@example.com"))["customerAccessToken"]["accessToken"]

    me = await client.query(ME, token=token)

    assert created["userErrors"] == []
    assert created["customer"]["email"] == "ann@example.com"
    assert me.data == {"me": {"email": "ann@example.com"}}


async def test_the_login_throttle_counts_every_form_against_one_address(
    database_url: str, clean: None
) -> None:
    settings = Settings(
        environment="test",
        database_url=database_url,
        redis_url=TEST_REDIS_URL,
        login_failures_per_email=5,
        **FAST_PASSWORDS,
    )
    async with running_app(settings) as client:
        await sign_up(client, PLAIN)
        forms = [
            PLAIN,
            FULLWIDTH,
            "Bob@Example.com",
            fullwidth("BOB") + "@example.com",
            " bob@EXAMPLE.com",
        ]
        failures = [await log_in(client, form, "wrong horse") for form in forms]
        locked = await log_in(client, PLAIN)

    assert all(f["userErrors"][0]["code"] == "INVALID_CREDENTIALS" for f in failures)
    assert locked["userErrors"][0]["code"] == "THROTTLED"
