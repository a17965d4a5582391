"""Per-request batching loaders over the catalog: one statement (or one MGET) per batch.

Named `<Entity>By<Key>Loader`. Created fresh for every request (`CatalogLoaders.create`):
a loader memoises for its own lifetime, which must never outlive one request.

What goes through the Redis record cache is read from the primary on a miss
(`repository.current`): the cache outlives the replica's lag, so it is filled with
current records only. Uncached reads (pages, reviews, stock, children) may come from
the read replica.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Generic, NoReturn, TypeVar, cast, overload

from aiodataloader import DataLoader

from domain.catalog import Category, InventoryLevel, Product, ProductImage, Review, Variant
from domain.listing import ProductListQuery
from domain.pagination import Page, PageRequest
from persistence.catalog.records import (
    decode_category,
    decode_image_list,
    decode_int_list,
    decode_product,
    decode_variant,
    decode_variant_list,
    encode_product,
    encode_record,
)
from persistence.catalog.repository import CatalogRepository
from persistence.redis.record_cache import RecordCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

ReviewsKey = tuple[int, PageRequest]  # (product id, page request)
CategoryProductsKey = tuple[str, ProductListQuery]  # (category slug, query)
RelatedKey = tuple[int, int]  # (product id, how many)


class MappingLoader(DataLoader[K, V], Generic[K, V]):
    """Resolves a batch with one `fetch(keys) -> {key: value}`; absent keys get `missing()`."""

    def __init__(
        self, fetch: Callable[[list[K]], Awaitable[Mapping[K, V]]], missing: Callable[[], V]
    ) -> None:
        super().__init__()
        self._fetch = fetch
        self._missing = missing

    async def batch_load_fn(self, keys: Sequence[K]) -> list[V]:
        found = await self._fetch(list(keys))
        return [found[k] if k in found else self._missing() for k in keys]

    def load_many(self, keys: Iterable[K]) -> Awaitable[list[V]]:  # type: ignore[override]
        """aiodataloader's `load_many` gathers one future per key: a done-callback and a
        loop turn each (about 140 for a listing of 20 products). The keys are queued
        here, now, exactly as before (so batches form the same); the values are then
        awaited in order, which suspends once per pending batch, not once per key."""
        return _values([self.load(key) for key in keys])


async def _values(futures: list[asyncio.Future[V]]) -> list[V]:
    values: list[V] = []
    for at, future in enumerate(futures):
        try:
            values.append(await future)
        except BaseException:
            for rest in futures[at + 1 :]:  # as gather does: no "never retrieved" warning
                rest.add_done_callback(_retrieve)
            raise
    return values


async def settled(*awaitables: Awaitable[Any] | None) -> list[Any]:
    """Each awaitable's value, or the Exception it raised, in order (None for None), as
    `gather(..., return_exceptions=True)` gives; a cancellation (or any BaseException)
    is raised, and what was not yet awaited runs on by itself (its loads were queued;
    their outcome is retrieved, as `_values` does: no "never retrieved" warning)."""
    results: list[Any] = []
    try:
        for awaitable in awaitables:
            if awaitable is None:
                results.append(None)
                continue
            try:
                results.append(await awaitable)
            except Exception as error:
                results.append(error)
    except BaseException:
        for rest in awaitables[len(results) + 1 :]:
            if rest is not None:
                asyncio.ensure_future(rest).add_done_callback(_retrieve)
        raise
    return results


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _none() -> None:
    return None


def _never_missing() -> NoReturn:
    """`missing` of the page loaders: their fetch answers every key it is given (a
    parent with no rows gets an empty page), so a key left out is a bug, not None."""
    raise LookupError("a page loader's fetch left out a key it was given")


def through_cache(
    records: RecordCache,
    kind: str,
    fetch: Callable[[list[K]], Awaitable[dict[K, V]]],
    encode: Callable[[V], bytes],
    decode: Callable[[bytes], V],
) -> Callable[[list[K]], Awaitable[dict[K, V]]]:
    """`fetch`, read through the Redis record cache under `kind`."""

    async def read(keys: list[K]) -> dict[K, V]:
        return await records.read_through(kind, keys, fetch, encode, decode)

    return read


class ProductByIdLoader(MappingLoader[int, Product | None]):
    def __init__(self, repository: CatalogRepository, records: RecordCache) -> None:
        fetch = through_cache(
            records, "product", repository.current.products_by_ids, encode_product, decode_product
        )
        super().__init__(fetch, _none)


class ProductBySlugLoader(MappingLoader[str, Product | None]):
    def __init__(
        self, repository: CatalogRepository, records: RecordCache, by_id: ProductByIdLoader
    ) -> None:
        read = through_cache(
            records,
            "product-slug",
            repository.current.products_by_slugs,
            encode_product,
            decode_product,
        )

        async def fetch(slugs: list[str]) -> dict[str, Product | None]:
            found = await read(slugs)
            for product in found.values():
                by_id.prime(product.id, product)
            return dict(found)

        super().__init__(fetch, _none)


class VariantsByProductIdLoader(MappingLoader[int, list[Variant]]):
    def __init__(self, repository: CatalogRepository, records: RecordCache) -> None:
        fetch = through_cache(
            records,
            "product-variants",
            repository.current.variants_by_product_ids,
            encode_record,
            decode_variant_list,
        )
        super().__init__(fetch, list)


class VariantByIdLoader(MappingLoader[int, Variant | None]):
    def __init__(self, repository: CatalogRepository, records: RecordCache) -> None:
        fetch = through_cache(
            records, "variant", repository.current.variants_by_ids, encode_record, decode_variant
        )
        super().__init__(fetch, _none)


class InventoryByVariantIdLoader(MappingLoader[int, InventoryLevel | None]):
    """Stock is never cached: `quantityAvailable` is what checkout will see, or with a
    read replica what it saw at most the replica's staleness bound ago (checkout itself
    reserves with a conditional update on the primary)."""

    def __init__(self, repository: CatalogRepository) -> None:
        super().__init__(repository.inventory_by_variant_ids, _none)


class ImagesByProductIdLoader(MappingLoader[int, list[ProductImage]]):
    def __init__(self, repository: CatalogRepository, records: RecordCache) -> None:
        fetch = through_cache(
            records,
            "product-images",
            repository.current.images_by_product_ids,
            encode_record,
            decode_image_list,
        )
        super().__init__(fetch, list)


class CategoryByIdLoader(MappingLoader[int, Category | None]):
    """Categories through the cache; a miss loads the category with its ancestors,
    caches them all and primes them, so breadcrumbs and `parent` cost nothing more."""

    def __init__(self, repository: CatalogRepository, records: RecordCache) -> None:
        fetch = through_cache(
            records,
            "category",
            repository.current.categories_by_ids,
            encode_record,
            decode_category,
        )
        super().__init__(fetch, _none)

    async def batch_load_fn(self, keys: Sequence[int]) -> list[Category | None]:
        # A method, not a closure over `self`: a loader must not sit in a reference cycle.
        found = await self._fetch(list(keys))
        for category_id, category in found.items():
            if category_id not in keys and category is not None:
                self.prime(category_id, category)
        return [found.get(k) for k in keys]


class CategoryBySlugLoader(MappingLoader[str, Category | None]):
    def __init__(self, repository: CatalogRepository, by_id: CategoryByIdLoader) -> None:
        async def fetch(slugs: list[str]) -> dict[str, Category | None]:
            found = await repository.categories_by_slugs(slugs)
            for category in found.values():
                by_id.prime(category.id, category)
            return dict(found)

        super().__init__(fetch, _none)


class ChildCategoriesByParentIdLoader(MappingLoader[int, list[Category]]):
    def __init__(self, repository: CatalogRepository) -> None:
        super().__init__(repository.children_by_category_ids, list)


class ProductsByCategorySlugLoader(MappingLoader[CategoryProductsKey, Page[Product]]):
    """`category.products` of many categories: one windowed statement per distinct query."""

    def __init__(self, repository: CatalogRepository) -> None:
        async def fetch(
            keys: list[CategoryProductsKey],
        ) -> dict[CategoryProductsKey, Page[Product]]:
            pages: dict[CategoryProductsKey, Page[Product]] = {}
            for query, slugs in _group_by_second(keys).items():
                found = await repository.list_products_by_category(slugs, query)
                pages.update({(slug, query): found[slug] for slug in slugs})
            return pages

        super().__init__(fetch, _never_missing)


class ReviewByIdLoader(MappingLoader[int, Review | None]):
    def __init__(self, repository: CatalogRepository) -> None:
        super().__init__(repository.reviews_by_ids, _none)


class ReviewsByProductIdLoader(MappingLoader[ReviewsKey, Page[Review]]):
    """Newest-first review pages: one windowed statement per distinct page request."""

    def __init__(self, repository: CatalogRepository) -> None:
        async def fetch(keys: list[ReviewsKey]) -> dict[ReviewsKey, Page[Review]]:
            pages: dict[ReviewsKey, Page[Review]] = {}
            for request, product_ids in _group_by_second(keys).items():
                found = await repository.newest_reviews(product_ids, request)
                pages.update({(pid, request): found[pid] for pid in product_ids})
            return pages

        super().__init__(fetch, _never_missing)


class RelatedProductsByProductIdLoader(MappingLoader[RelatedKey, list[Product]]):
    """Best-rated products of the same category.

    The ranked id lists are cached (`related:<first>:<id>`, record TTL): ranking is the
    costly part (a window over the whole category) and may lag a rating change by the
    TTL. The records themselves come through the product loader, so titles, prices and
    visibility are always current; a product archived since is left out.
    """

    def __init__(
        self, repository: CatalogRepository, records: RecordCache, by_id: ProductByIdLoader
    ) -> None:
        async def fetch(keys: list[RelatedKey]) -> dict[RelatedKey, list[Product]]:
            related: dict[RelatedKey, list[Product]] = {}
            for first, product_ids in _group_by_second(keys).items():

                async def ranked(ids: list[int], first: int = first) -> dict[int, list[int]]:
                    found = await repository.current.related_products(ids, first)
                    records_by_id = {p.id: p for products in found.values() for p in products}
                    for product in records_by_id.values():
                        by_id.prime(product.id, product)
                    await records.store("product", records_by_id, encode_product)
                    return {pid: [p.id for p in found.get(pid, [])] for pid in ids}

                ids_by_product = await records.read_through(
                    f"related:{first}", product_ids, ranked, encode_record, decode_int_list
                )
                wanted = list({i for ids in ids_by_product.values() for i in ids})
                loaded = dict(zip(wanted, await by_id.load_many(wanted), strict=True))
                for pid in product_ids:
                    products = (loaded.get(i) for i in ids_by_product.get(pid, []))
                    related[(pid, first)] = [p for p in products if p is not None and p.is_visible]
            return related

        super().__init__(fetch, list)


F = TypeVar("F")
P = TypeVar("P", bound=Hashable)


def _group_by_second(keys: list[tuple[F, P]]) -> dict[P, list[F]]:
    grouped: dict[P, list[F]] = defaultdict(list)
    for first, second in keys:
        grouped[second].append(first)
    return grouped


LoaderT = TypeVar("LoaderT", bound="DataLoader[Any, Any]")


class _MadeOnFirstUse(Generic[LoaderT]):
    """A loader of the group, made the first time the request reads it (about 9 µs a
    loader: most requests read a few of the thirteen)."""

    __slots__ = ("_make", "_name")

    def __init__(self, make: Callable[[CatalogLoaders], LoaderT]) -> None:
        self._make = make
        self._name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, group: None, owner: type) -> _MadeOnFirstUse[LoaderT]: ...

    @overload
    def __get__(self, group: CatalogLoaders, owner: type) -> LoaderT: ...

    def __get__(
        self, group: CatalogLoaders | None, owner: type
    ) -> LoaderT | _MadeOnFirstUse[LoaderT]:
        if group is None:
            return self
        made = group._made
        loader = made.get(self._name)
        if loader is None:
            loader = made[self._name] = self._make(group)
            if group._on_made is not None:
                group._on_made(loader)
        return cast(LoaderT, loader)


class CatalogLoaders:
    """One request's catalog loaders, each made when first read (`on_made` is told of
    each, for tracing). Loaders that need another (the slug loaders prime the id
    loaders) read it here, so they share the request's one."""

    __slots__ = ("_made", "_on_made", "records", "repository")
    repository: CatalogRepository
    records: RecordCache

    product_by_id = _MadeOnFirstUse(lambda g: ProductByIdLoader(g.repository, g.records))
    product_by_slug = _MadeOnFirstUse(
        lambda g: ProductBySlugLoader(g.repository, g.records, g.product_by_id)
    )
    variants_by_product_id = _MadeOnFirstUse(
        lambda g: VariantsByProductIdLoader(g.repository, g.records)
    )
    variant_by_id = _MadeOnFirstUse(lambda g: VariantByIdLoader(g.repository, g.records))
    inventory_by_variant_id = _MadeOnFirstUse(lambda g: InventoryByVariantIdLoader(g.repository))
    images_by_product_id = _MadeOnFirstUse(
        lambda g: ImagesByProductIdLoader(g.repository, g.records)
    )
    category_by_id = _MadeOnFirstUse(lambda g: CategoryByIdLoader(g.repository, g.records))
    category_by_slug = _MadeOnFirstUse(
        lambda g: CategoryBySlugLoader(g.repository, g.category_by_id)
    )
    children_by_category_id = _MadeOnFirstUse(
        lambda g: ChildCategoriesByParentIdLoader(g.repository)
    )
    products_by_category_slug = _MadeOnFirstUse(
        lambda g: ProductsByCategorySlugLoader(g.repository)
    )
    review_by_id = _MadeOnFirstUse(lambda g: ReviewByIdLoader(g.repository))
    reviews_by_product_id = _MadeOnFirstUse(lambda g: ReviewsByProductIdLoader(g.repository))
    related_by_product_id = _MadeOnFirstUse(
        lambda g: RelatedProductsByProductIdLoader(g.repository, g.records, g.product_by_id)
    )

    def __init__(
        self,
        repository: CatalogRepository,
        records: RecordCache,
        on_made: Callable[[DataLoader[Any, Any]], None] | None = None,
    ) -> None:
        self.repository = repository
        self.records = records
        self._made: dict[str, DataLoader[Any, Any]] = {}
        self._on_made = on_made

    @property
    def made(self) -> list[DataLoader[Any, Any]]:
        """The loaders this request has read so far."""
        return list(self._made.values())

    def clear(self) -> None:
        """Drop every memoised record: the request is over. graphql-core's executor sits
        in reference cycles with the context; without this, every record a request loaded
        would wait for a full garbage collection instead of being freed at once."""
        for loader in self._made.values():
            loader.clear_all()

    @classmethod
    def create(cls, repository: CatalogRepository, records: RecordCache) -> CatalogLoaders:
        return cls(repository, records)
