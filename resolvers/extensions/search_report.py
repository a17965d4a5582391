"""`extensions.search {engine fallbackReason}` on every response where a search ran."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension

from schema.context import context_of


class SearchReport(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        context = context_of(self.execution_context)
        report = None if context is None else context.state.search_report
        return {} if report is None else {"search": report}
