"""Partner webhooks in SQL: the webhooks, their delivery queue and log."""
