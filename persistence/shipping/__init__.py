"""Shipping zones and methods in SQL."""
