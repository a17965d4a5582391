"""Email verification: a code mailed at sign-up, `emailVerified`, single use, a resend
through customerUpdate, and an address taken before the code comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from persistence.db import Database
from settings import Settings
from tests.account_mail import (
    DELETE,
    ME,
    UPDATE,
    VERIFY,
    deliver_account_mail,
    mailed_code,
    quick_mail,
    recorded_mails,
)
from tests.client import AppClient, customer_token, running_app
from tests.shop import stored_customers

PASSWORD = "correct horse"


@pytest.fixture
async def shop(settings: Settings, clean: None) -> AsyncIterator[AppClient]:
    async with running_app(quick_mail(settings)) as client:
        yield client


async def _verify(client: AppClient, code: str) -> dict:
    return (await client.query(VERIFY, {"token": code})).data["customerEmailVerify"]


async def test_a_new_account_is_unverified_until_its_mailed_code_comes_back(
    shop: AppClient,
) -> None:
    token = await customer_token(shop, "ann@example.com")
    before = (await shop.query(ME, token=token)).data["me"]
    code = await mailed_code(shop, "email_verification", "ann@example.com")

    verified = await _verify(shop, code)
    again = await _verify(shop, code)

    assert before["emailVerified"] is False
    assert verified["userErrors"] == []
    assert verified["customer"] == {
        "id": before["id"],
        "email": "ann@example.com",
        "emailVerified": True,
    }
    assert (await shop.query(ME, token=token)).data["me"]["emailVerified"] is True
    assert [(e["code"], e["field"]) for e in again["userErrors"]] == [("INVALID_TOKEN", ["token"])]


async def test_unknown_and_malformed_codes_are_invalid(shop: AppClient) -> None:
    await customer_token(shop, "ann@example.com")

    for code in ("x" * 43, "", "x" * 201):
        result = await _verify(shop, code)
        assert [e["code"] for e in result["userErrors"]] == ["INVALID_TOKEN"]
        assert result["customer"] is None


async def test_asking_again_for_the_same_address_mails_a_new_code_and_ends_the_old(
    shop: AppClient,
) -> None:
    token = await customer_token(shop, "ann@example.com")
    first = await mailed_code(shop, "email_verification", "ann@example.com")

    resent = (await shop.query(UPDATE, {"input": {"email": "ann@example.com"}}, token=token)).data[
        "customerUpdate"
    ]
    second = await mailed_code(shop, "email_verification", "ann@example.com")

    assert resent["userErrors"] == []  # no password needed: nothing changes hands
    assert second != first
    assert [e["code"] for e in (await _verify(shop, first))["userErrors"]] == ["INVALID_TOKEN"]
    assert (await _verify(shop, second))["customer"]["emailVerified"] is True
    assert len(await recorded_mails(shop, "email_verification")) == 2


async def test_an_address_taken_before_verification_is_refused_then(
    shop: AppClient, db: Database
) -> None:
    ann = await customer_token(shop, "ann@example.com")
    asked = await shop.query(
        UPDATE, {"input": {"email": "shared@example.com", "currentPassword": PASSWORD}}, token=ann
    )
    assert asked.data["customerUpdate"]["userErrors"] == []
    code = await mailed_code(shop, "email_verification", "shared@example.com")
    await customer_token(shop, "shared@example.com")  # someone signs up with it first

    late = await _verify(shop, code)

    assert [(e["code"], e["field"]) for e in late["userErrors"]] == [("EMAIL_TAKEN", ["token"])]
    assert sorted(email for email, _ in await stored_customers(db)) == [
        "ann@example.com",
        "shared@example.com",
    ]


async def test_a_code_verifies_only_the_customer_it_was_mailed_for(shop: AppClient) -> None:
    ann = await customer_token(shop, "ann@example.com")
    bob = await customer_token(shop, "bob@example.com")
    code = await mailed_code(shop, "email_verification", "ann@example.com")

    await _verify(shop, code)

    assert (await shop.query(ME, token=ann)).data["me"]["emailVerified"] is True
    assert (await shop.query(ME, token=bob)).data["me"]["emailVerified"] is False


async def test_a_code_replaced_or_erased_before_its_mail_left_is_never_mailed(
    shop: AppClient,
) -> None:
    ann = await customer_token(shop, "ann@example.com")  # queues the sign-up's code
    await shop.query(UPDATE, {"input": {"email": "ann@example.com"}}, token=ann)  # replaces it
    bob = await customer_token(shop, "bob@example.com")
    await shop.query(DELETE, {"password": PASSWORD}, token=bob)  # erased before his mail left

    await deliver_account_mail(shop)

    assert [to for to, _ in await recorded_mails(shop, "email_verification")] == ["ann@example.com"]
