"""Optional parts of a screen fail soft.

A shopper can still buy from a product page without its related products or its
reviews, so when one of these optional fields cannot be loaded it gets its empty
value and the response says so in `extensions.degraded: [{path, reason, errorId}]`;
the product itself, the cart and checkout never fail because of them. The optional
fields, with the reason each reports:

- `Product.related`  -> `[]`, RELATED_UNAVAILABLE (a ranking, cached; the product's own
  category fed)
- `Product.reviews`  -> an empty connection, REVIEWS_UNAVAILABLE
- `Product.images`   -> `[]`, IMAGES_UNAVAILABLE (cache-fed records)
- `Product.category` and `Category.parent` -> `null`, CATEGORY_UNAVAILABLE
- `SearchConnection.facets` -> `[]`, FACETS_UNAVAILABLE (the search is asked again
  without them, so the results still come)

Not optional: a product's own row (title, prices, `ratingSummary`, which is read with
it), its variants and their stock (what checkout sells), and a search's hits and
`totalCount` (read with the hits; a wrong 0 would mislead more than an error).
Client mistakes (`DomainError`: a bad cursor, `first` out of range) are never
degraded: they stay coded errors.

Nothing here runs unless something failed: the field resolvers catch around their
loader call, and `build_products` names response paths only for a relation whose
batch raised. `DegradedReport` gives each operation its own list (batched operations
run concurrently on one request) and moves it into `extensions`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

from graphql import FieldNode

from domain.errors import DomainError
from schema.context import Info
from schema.selection import children

log = logging.getLogger("commerce.degraded")

ResponsePath = tuple[str | int, ...]


class DegradedReason(StrEnum):
    RELATED_UNAVAILABLE = "RELATED_UNAVAILABLE"
    REVIEWS_UNAVAILABLE = "REVIEWS_UNAVAILABLE"
    IMAGES_UNAVAILABLE = "IMAGES_UNAVAILABLE"
    CATEGORY_UNAVAILABLE = "CATEGORY_UNAVAILABLE"
    FACETS_UNAVAILABLE = "FACETS_UNAVAILABLE"


@dataclass
class Degradations:
    """What one operation left out, and the error id each distinct failure was logged under."""

    entries: list[dict[str, object]] = field(default_factory=list)
    # A failed loader batch raises the same exception in every field that waited on it:
    # keyed by its identity (an exception class may define __eq__ and lose __hash__), it
    # is logged once however many fields it emptied. The exception is kept so the id
    # cannot be reused by another one while the operation runs.
    _error_ids: dict[int, tuple[BaseException, str]] = field(default_factory=dict)

    def add(self, error: Exception, reason: DegradedReason, paths: Iterable[ResponsePath]) -> None:
        known = self._error_ids.get(id(error))
        paths = list(paths)
        if known is not None:
            error_id = known[1]
        else:
            error_id = uuid.uuid4().hex
            self._error_ids[id(error)] = (error, error_id)
            where = [list(p) for p in paths[:3]]
            log.error(
                "degraded %s: %s at %s",
                error_id,
                reason,
                where,
                exc_info=error,
                extra={"error_id": error_id},
            )
        self.entries.extend(
            {"path": list(path), "reason": reason.value, "errorId": error_id} for path in paths
        )

    def release(self) -> None:
        # The exceptions hold tracebacks, whose frames hold the request: let them go.
        self._error_ids.clear()


current_degradations: ContextVar[Degradations | None] = ContextVar(
    "current_degradations", default=None
)


def degrade(
    info: Info,
    error: Exception,
    reason: DegradedReason,
    paths: Iterable[ResponsePath] | None = None,
) -> None:
    """Record that `error` emptied an optional field (this field, unless `paths` says
    which ones). Client mistakes are re-raised: they are errors, not degradations."""
    if isinstance(error, DomainError):
        raise error
    degradations = current_degradations.get()
    if degradations is None:  # no DegradedReport running: fail as before rather than hide it
        raise error
    here: Iterable[ResponsePath] = paths if paths is not None else [tuple(info.path.as_list())]
    degradations.add(error, reason, here)


def response_paths(info: Info, steps: Sequence[str | int]) -> Iterator[ResponsePath]:
    """The response paths of what `steps` reaches below this field: each name step is
    a field name, expanded to every alias that selects it; each int is a list index."""
    raw = info._raw_info
    reached: list[tuple[ResponsePath, list[FieldNode]]] = [
        (tuple(info.path.as_list()), list(raw.field_nodes))
    ]
    for step in steps:
        if isinstance(step, int):
            reached = [((*path, step), nodes) for path, nodes in reached]
            continue
        following: list[tuple[ResponsePath, list[FieldNode]]] = []
        for path, nodes in reached:
            by_key: dict[str, list[FieldNode]] = {}
            for child in children(nodes, raw.fragments):
                if child.name.value == step:
                    key = child.alias.value if child.alias else step
                    by_key.setdefault(key, []).append(child)
            following.extend(((*path, key), group) for key, group in by_key.items())
        reached = following
    for path, _ in reached:
        yield path
