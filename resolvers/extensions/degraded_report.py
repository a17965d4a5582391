"""`extensions.degraded [{path, reason, errorId}]` on a response whose optional parts failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from schema.context import context_of
from schema.degradation import Degradations, current_degradations


class DegradedReport(SchemaExtension):
    """Gives each operation its own record of degraded fields; absent when none were.

    A context variable, not the request: a batched request runs its operations
    concurrently on one context, and each must report only its own.
    """

    def __init__(self) -> None:
        super().__init__()
        self._degradations = Degradations()

    def on_operation(self) -> Iterator[None]:
        token = current_degradations.set(self._degradations)
        try:
            yield
        finally:
            current_degradations.reset(token)
            self._degradations.release()

    def get_results(self) -> dict[str, Any]:
        entries = self._degradations.entries
        if not entries:
            return {}
        context = context_of(self.execution_context)
        if context is not None:  # for the request's metrics and log line
            state = context.state
            state.degraded_reasons = state.degraded_reasons | {
                str(entry["reason"]) for entry in entries
            }
        return {"degraded": entries}
