"""Customers (SQL), sessions and login throttles (Redis), partners (SQL)."""
