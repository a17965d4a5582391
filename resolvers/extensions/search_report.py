"""`extensions.search {engine fallbackReason}` on every response where a search ran."""

from __future__ import annotations

from typing import Any

from strawberry.extensions import SchemaExtension


class SearchReport(SchemaExtension):
    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        request = getattr(context, "request", None)
        report = getattr(getattr(request, "state", None), "search_report", None)
        return {} if report is None else {"search": report}
