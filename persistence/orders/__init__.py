"""Orders, idempotency keys and notifications in SQL."""
