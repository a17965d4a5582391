"""Secrets in the settings never print, and a missing one is a clear error at start."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from settings import Settings

PASSWORD = "hunter2-not-for-print"

SECRETS = {
    "database_url": f"postgresql+asyncpg://shop:{PASSWORD}@db:5432/shop",
    "database_read_url": f"postgresql+asyncpg://shop:{PASSWORD}@replica:5432/shop",
    "redis_url": f"redis://:{PASSWORD}@redis:6379/0",
    "elasticsearch_url": f"https://elastic:{PASSWORD}@search:9200",
    "smtp_url": f"smtp://mailer:{PASSWORD}@mail:587",
    "stripe_api_key": f"sk_live_{PASSWORD}",
    "stripe_webhook_secret": f"whsec_{PASSWORD}",
    "pii_encryption_keys": f"{PASSWORD}-fernet-key",
    "pii_index_key": f"{PASSWORD}-blind-index-key-of-32-or-more",
    "order_status_token_key": f"{PASSWORD}-status-token-key-0123456789",
    "gift_card_code_key": f"{PASSWORD}-gift-card-code-key-0123456789",
}


def test_secrets_never_appear_in_reprs_dumps_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    # Given production settings with a password in every URL and a key in every secret
    settings = Settings(
        _env_file=None, environment="production", payment_gateway="stripe", **SECRETS
    )

    # When the settings are printed, dumped or logged
    with caplog.at_level(logging.INFO):
        logging.getLogger("commerce").info("starting with %s", settings)
    shown = [repr(settings), str(settings), settings.model_dump_json(), caplog.text]

    # Then no secret shows, and the code still reads each one whole
    assert [PASSWORD in text for text in shown] == [False] * len(shown)
    assert settings.effective_database_url == SECRETS["database_url"]
    for name, value in SECRETS.items():
        secret = getattr(settings, name)
        assert secret is not None and secret.get_secret_value() == value, name


def test_the_stripe_gateway_without_its_key_is_refused_at_start() -> None:
    # Given PAYMENT_GATEWAY=stripe in development, where nothing else is required
    # When the settings are read, Then they are refused with what to set (not an
    # `assert` that vanishes under `python -O` and leaves Stripe a key of None)
    with pytest.raises(ValidationError, match="PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY"):
        Settings(_env_file=None, payment_gateway="stripe")
    with_key = Settings(_env_file=None, payment_gateway="stripe", stripe_api_key="sk_test_x")
    assert with_key.effective_payment_gateway == "stripe"


def test_a_refused_configuration_names_the_problem_but_shows_no_secret() -> None:
    # Given production settings that lack a required secret (the webhook's)
    given = {key: value for key, value in SECRETS.items() if key != "stripe_webhook_secret"}

    # When they are read, Then the error names what is missing and echoes none of the input
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production", payment_gateway="stripe", **given)
    assert "STRIPE_WEBHOOK_SECRET" in str(refused.value)
    assert shown_secrets(str(refused.value)) == []
    with pytest.raises(ValidationError) as bad_value:
        Settings(_env_file=None, redis_url=SECRETS["redis_url"], database_pool_size=0)
    assert "database_pool_size" in str(bad_value.value)
    assert shown_secrets(str(bad_value.value)) == []


def shown_secrets(text: str) -> list[str]:
    # pydantic shortens a long input in its messages to its head and tail: look for both.
    return [
        name
        for name, value in SECRETS.items()
        if PASSWORD in text or value[:12] in text or value[-12:] in text
    ]
