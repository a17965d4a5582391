"""customerUpdate over the real stack: names, passwords (ending the other tokens),
emails that replace the login only once verified, and the per-customer token index."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from persistence.accounts.sessions import RedisSessionStore
from persistence.db import Database
from settings import Settings
from tests.account_mail import ME, UPDATE, VERIFY, mailed_code, quick_mail
from tests.client import LOG_IN, AppClient, customer_token, running_app
from tests.shop import stored_customers

PASSWORD = "correct horse"


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(quick_mail(settings)) as client:
        yield client


async def _update(client: AppClient, token: str, **fields: str) -> dict:
    return (await client.query(UPDATE, {"input": fields}, token=token)).data["customerUpdate"]


async def _log_in(client: AppClient, email: str, password: str = PASSWORD) -> list[str]:
    """The login's error codes ([] when it worked)."""
    result = await client.query(LOG_IN, {"email": email, "password": password})
    return [e["code"] for e in result.data["customerAccessTokenCreate"]["userErrors"]]


async def _me(client: AppClient, token: str) -> dict | None:
    me: dict | None = (await client.query(ME, token=token)).data["me"]
    return me


async def test_a_name_changes_without_a_password(shop: AppClient) -> None:
    token = await customer_token(shop, "ann@example.com")

    updated = await _update(shop, token, name="  Ann Marie Lee ")

    assert updated["userErrors"] == []
    assert updated["customer"]["name"] == "Ann Marie Lee"
    assert (await _me(shop, token)) == {**updated["customer"]}


async def test_a_password_change_needs_the_current_password(shop: AppClient) -> None:
    token = await customer_token(shop, "ann@example.com")

    missing = await _update(shop, token, password="a new password")
    wrong = await _update(shop, token, password="a new password", currentPassword="guess")

    assert [(e["code"], e["field"]) for e in missing["userErrors"]] == [
        ("BLANK", ["currentPassword"])
    ]
    assert [(e["code"], e["field"]) for e in wrong["userErrors"]] == [
        ("INVALID_CREDENTIALS", ["currentPassword"])
    ]
    assert missing["customer"] is None and wrong["customer"] is None
    assert await _log_in(shop, "ann@example.com") == []  # the old password still works
    assert await _log_in(shop, "ann@example.com", "a new password") == ["INVALID_CREDENTIALS"]


async def test_wrong_current_passwords_are_throttled_like_logins(shop: AppClient) -> None:
    token = await customer_token(shop, "ann@example.com")

    codes = []
    for _ in range(6):
        result = await _update(shop, token, password="a new password", currentPassword="guess")
        codes.append(result["userErrors"][0]["code"])
    right = await _update(shop, token, password="a new password", currentPassword=PASSWORD)

    assert codes == ["INVALID_CREDENTIALS"] * 5 + ["THROTTLED"]
    # Even the right password is refused now: the throttle is no password oracle.
    assert right["userErrors"][0]["code"] == "THROTTLED"
    assert await _log_in(shop, "ann@example.com") == ["THROTTLED"]  # one counter with logins


async def test_a_password_change_ends_every_other_token_and_keeps_the_callers(
    shop: AppClient,
) -> None:
    phone = await customer_token(shop, "ann@example.com")
    laptop = await customer_token(shop, "ann@example.com")
    bob = await customer_token(shop, "bob@example.com")

    changed = await _update(shop, phone, password="a new password", currentPassword=PASSWORD)

    assert changed["userErrors"] == [] and changed["customerAccessToken"] is None
    assert (await _me(shop, phone)) is not None  # the caller's token stays
    assert (await _me(shop, laptop)) is None  # every other one ended
    assert (await _me(shop, bob)) is not None  # another customer's are untouched
    assert await _log_in(shop, "ann@example.com") == ["INVALID_CREDENTIALS"]
    assert await _log_in(shop, "ann@example.com", "a new password") == []


async def test_refused_input_changes_nothing(shop: AppClient, db: Database) -> None:
    token = await customer_token(shop, "ann@example.com")

    result = await _update(
        shop, token, name="New", email="not-an-email", password="short", currentPassword=PASSWORD
    )

    assert {(e["code"], e["field"][-1]) for e in result["userErrors"]} == {
        ("INVALID", "email"),
        ("TOO_SHORT", "password"),
    }
    assert (await _me(shop, token))["name"] == "ann"  # type: ignore[index]
    assert await _log_in(shop, "ann@example.com") == []


async def test_without_a_token_the_update_is_unauthenticated(shop: AppClient) -> None:
    result = await shop.query(UPDATE, {"input": {"name": "Mallory"}})

    assert result.error_codes == ["UNAUTHENTICATED"]


async def test_a_new_email_replaces_the_login_only_once_verified(
    shop: AppClient, db: Database
) -> None:
    token = await customer_token(shop, "ann@example.com")

    asked = await _update(shop, token, email="Ann@New.example", currentPassword=PASSWORD)

    # Until the mailed token comes back, nothing about the login changes.
    assert asked["userErrors"] == []
    assert asked["customer"]["email"] == "ann@example.com"
    assert (await _me(shop, token))["email"] == "ann@example.com"  # type: ignore[index]
    assert await _log_in(shop, "ann@new.example") == ["INVALID_CREDENTIALS"]
    code = await mailed_code(shop, "email_verification", "ann@new.example")

    verified = (await shop.query(VERIFY, {"token": code})).data["customerEmailVerify"]

    assert verified["userErrors"] == []
    assert verified["customer"] == {
        "id": asked["customer"]["id"],
        "email": "ann@new.example",
        "emailVerified": True,
    }
    assert await _log_in(shop, "ann@new.example") == []
    assert await _log_in(shop, "ann@example.com") == ["INVALID_CREDENTIALS"]
    assert [email for email, _ in await stored_customers(db)] == ["ann@new.example"]


async def test_an_email_change_needs_the_password_and_a_free_address(shop: AppClient) -> None:
    token = await customer_token(shop, "ann@example.com")
    await customer_token(shop, "bob@example.com")

    no_password = await _update(shop, token, email="ann@new.example")
    taken = await _update(shop, token, email="BOB@example.com", currentPassword=PASSWORD)

    assert no_password["userErrors"][0]["code"] == "BLANK"
    assert [(e["code"], e["field"]) for e in taken["userErrors"]] == [("EMAIL_TAKEN", ["email"])]
    assert await _log_in(shop, "bob@example.com") == []  # Bob's account is untouched


async def test_a_token_only_ever_changes_its_own_customer(shop: AppClient, db: Database) -> None:
    ann = await customer_token(shop, "ann@example.com")
    await customer_token(shop, "bob@example.com")

    await _update(shop, ann, name="Renamed", password="a new password", currentPassword=PASSWORD)

    assert dict(await stored_customers(db)) == {
        "ann@example.com": "Renamed",
        "bob@example.com": "bob",
    }
    assert await _log_in(shop, "bob@example.com") == []


async def test_revoke_all_ends_a_customers_tokens_but_the_kept_one(
    redis: Redis, clean: None
) -> None:
    sessions = RedisSessionStore(redis, ttl_seconds=3600)
    kept, other, third = [await sessions.create(1) for _ in range(3)]
    bobs = await sessions.create(2)

    ended = await sessions.revoke_all(1, keep=kept.token)

    assert ended == 2
    assert await sessions.customer_id(kept.token) == 1
    assert await sessions.customer_id(other.token) is None
    assert await sessions.customer_id(third.token) is None
    assert await sessions.customer_id(bobs.token) == 2
    assert await sessions.revoke_all(1) == 1 and await sessions.customer_id(kept.token) is None
    assert await sessions.revoke_all(1) == 0


async def test_the_token_index_forgets_expired_sessions(redis: Redis, clean: None) -> None:
    sessions = RedisSessionStore(redis, ttl_seconds=1)
    for _ in range(5):
        await sessions.create(1)
    await asyncio.sleep(1.1)

    await sessions.create(1)

    assert await redis.zcard("customer-sessions:1") == 1  # expired members were trimmed
    assert 0 < await redis.ttl("customer-sessions:1") <= 1  # and the index itself expires


async def test_me_with_its_verification_state_is_one_statement(shop: AppClient) -> None:
    token = await customer_token(shop, "ann@example.com")

    me = await shop.query(ME, token=token)

    assert me.data["me"]["emailVerified"] is False
    assert me.statements == 1  # the customer row; the session is read from Redis
