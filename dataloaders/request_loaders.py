"""Where a request's loaders come from: made on first use, never before.

A request used to build all twenty of its loaders in `get_context`, though a listing
touches five and `{ __typename }` none (each aiodataloader asks the event loop and
inspects its batch function as it is made). The Context now asks this factory for a
group the first time a resolver reaches for it; what a request never reaches for is
never made. Loaders still live for one request only: the factory holds no loader.
"""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from aiodataloader import DataLoader
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.trace import Tracer

from dataloaders.addresses import CustomerAddressByIdLoader
from dataloaders.catalog import CatalogLoaders
from dataloaders.orders import OrderLoaders
from dataloaders.tracing import trace_loaders
from domain.address_book import AddressBook
from persistence.catalog.repository import CatalogRepository
from persistence.orders.order_details import SqlOrderDetails
from persistence.redis.record_cache import RecordCache

G = TypeVar("G")


class LoaderFactory:
    """Makes fresh loader groups over the process's repositories. With a `tracer`, a
    group made inside a sampled request gets a span per batch (as `trace_loaders`)."""

    __slots__ = ("_address_book", "_catalog", "_order_details", "_records", "_tracer")

    def __init__(
        self,
        catalog: CatalogRepository,
        records: RecordCache,
        order_details: SqlOrderDetails,
        address_book: AddressBook,
        tracer: Tracer | None = None,
    ) -> None:
        self._catalog = catalog
        self._records = records
        self._order_details = order_details
        self._address_book = address_book
        self._tracer = tracer

    def catalog(self) -> CatalogLoaders:
        # Its loaders are made one by one as the request reads them: each is traced then.
        tracer = self._sampled_tracer()
        on_made = None if tracer is None else functools.partial(_trace_one, tracer=tracer)
        return CatalogLoaders(self._catalog, self._records, on_made)

    def orders(self) -> OrderLoaders:
        return self._traced(OrderLoaders.create(self._order_details))

    def address_by_id(self) -> CustomerAddressByIdLoader:
        return self._traced(CustomerAddressByIdLoader(self._address_book))

    def _traced(self, group: G) -> G:
        tracer = self._sampled_tracer()
        if tracer is not None:
            trace_loaders((group,), tracer)
        return group

    def _sampled_tracer(self) -> Tracer | None:
        # Decided where the group is made: inside the request, whose sampling decision
        # (a suppressed context when it was left out) is the current one.
        if self._tracer is not None and is_instrumentation_enabled():
            return self._tracer
        return None


def _trace_one(loader: DataLoader[Any, Any], *, tracer: Tracer) -> None:
    trace_loaders((loader,), tracer)
