"""Fakes for tests: in-memory implementations of the domain ports (carts, orders,
idempotency, payments, accounts, search), each checked against its Protocol by mypy, and
local fakes of the third-party services our integrations call, served on 127.0.0.1."""
