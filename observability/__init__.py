"""Metrics, logs and where they are served: what operators watch."""
