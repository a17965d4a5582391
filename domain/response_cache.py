"""Whole responses of public catalog reads, kept and purged by what they contain.

An anonymous GET of a persisted catalog query is answered from a cache of response
bodies: first this process's `LocalResponses` (bounded by bytes), then a shared store
(Redis). What is cached, under which key and with which tags is decided here; the
HTTP edge and the store only carry it out.

- Key: the persisted document's sha256, the operation name, the variables in canonical
  form (sorted keys: the same variables in another order are the same answer) and a
  fingerprint of whatever else changes an answer (schema, currency, policies).
- Tags: every product, variant and category an answer was built from, `products` for an
  answer with a list of products (a new, archived or re-sorted product changes a list it
  is not in yet) and `categories` for category answers. Events purge by tag; a variant
  event also purges its product, so an answer too large to list every variant tag
  keeps its product tags only, and one too large for those keeps `catalog` (purged by
  every event) and its collection tags.
- A purge bumps a generation: an answer computed while a purge ran is not stored, so
  one read before the change cannot outlive it.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Root fields whose answers are catalog data only (plus __typename). Anything else
# (carts, orders, the viewer, search, shipping, discounts) is never cached.
CATALOG_ROOT_FIELDS = frozenset(
    {"products", "product", "categories", "category", "node", "nodes", "__typename"}
)
CATEGORY_ROOT_FIELDS = frozenset({"categories", "category", "node", "nodes"})

PRODUCTS_TAG = "products"  # any answer with a list of products
CATEGORIES_TAG = "categories"  # any answer that may show a category
OVERFLOW_TAG = "catalog"  # an answer too large to list its tags: every event purges it
# Surrogate-Key / Cache-Tag stay under this (Fastly and Cloudflare allow 16 KB).
MAX_TAG_BYTES = 4_096

# If-None-Match: a client may send a list, but only this much of it is read.
MAX_IF_NONE_MATCH_BYTES = 8_192
MAX_IF_NONE_MATCH_TAGS = 64


def product_tag(product_id: int) -> str:
    return f"product:{product_id}"


def variant_tag(variant_id: int) -> str:
    return f"variant:{variant_id}"


def category_tag(category_id: int) -> str:
    return f"category:{category_id}"


@dataclass(slots=True)
class ResponseTags:
    """What one answer was built from, noted while it executes (by the code that turns
    records into schema objects, never by reading the JSON)."""

    products: set[int] = field(default_factory=set)
    variants: set[int] = field(default_factory=set)
    categories: set[int] = field(default_factory=set)
    collections: set[str] = field(default_factory=set)

    def note_products(self, product_ids: Iterable[int], category_ids: Iterable[int]) -> None:
        self.products.update(product_ids)
        self.categories.update(category_ids)

    def note_variants(self, variant_ids: Iterable[int], product_ids: Iterable[int]) -> None:
        self.variants.update(variant_ids)
        self.products.update(product_ids)  # a variant event purges its product too

    def note_collection(self, tag: str) -> None:
        self.collections.add(tag)

    def tags(self, max_bytes: int = MAX_TAG_BYTES) -> tuple[str, ...]:
        """The answer's tags, at most `max_bytes` written out with separators."""
        collections = sorted(self.collections)
        products = [product_tag(i) for i in sorted(self.products)]
        categories = [category_tag(i) for i in sorted(self.categories)]
        variants = [variant_tag(i) for i in sorted(self.variants)]
        for candidate in (
            [*collections, *products, *categories, *variants],
            [*collections, *products, *categories],  # variant events purge products
        ):
            if _written_length(candidate) <= max_bytes:
                return tuple(candidate)
        return (OVERFLOW_TAG, *collections)


def _written_length(tags: Sequence[str]) -> int:
    return sum(len(t) for t in tags) + max(0, len(tags) - 1)


def purge_tags(
    product_ids: Iterable[int], variant_ids: Iterable[int], *, collection: bool
) -> tuple[str, ...]:
    """What a batch of catalog events purges: the products and variants it names, the
    product lists when a product appeared, changed or went, and always the answers
    too large to list their own tags."""
    tags = [OVERFLOW_TAG]
    if collection:
        tags.append(PRODUCTS_TAG)
    tags.extend(product_tag(i) for i in sorted(set(product_ids)))
    tags.extend(variant_tag(i) for i in sorted(set(variant_ids)))
    return tuple(tags)


def response_key(
    fingerprint: str, document_hash: str, operation_name: str | None, variables: bytes
) -> str:
    """One answer's key: sha256 over its parts, each length-prefixed so no two
    different requests can write the same bytes."""
    digest = hashlib.sha256()
    for part in (fingerprint.encode(), document_hash.encode(), (operation_name or "").encode()):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    digest.update(variables)
    return digest.hexdigest()


def etag_of(body: bytes) -> str:
    """A strong validator: a hash of the exact bytes (the HTTP edge's own rule)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, as RFC 9110 says for it;
    `*` matches). Only the first few entries of a long header are read."""
    if not if_none_match:
        return False
    header = if_none_match[:MAX_IF_NONE_MATCH_BYTES]
    for number, candidate in enumerate(header.split(",")):
        if number >= MAX_IF_NONE_MATCH_TAGS:
            return False
        value = candidate.strip()
        if value == "*":
            return True
        if value.startswith("W/"):
            value = value[2:]
        if value == etag:
            return True
    return False


@dataclass(frozen=True, slots=True)
class CachedResponse:
    body: bytes
    etag: str
    tags: tuple[str, ...]

    @classmethod
    def of(cls, body: bytes, tags: tuple[str, ...]) -> CachedResponse:
        return cls(body=body, etag=etag_of(body), tags=tags)

    @property
    def size(self) -> int:
        # The body, its validator and tags, and the entry's own bookkeeping.
        return len(self.body) + len(self.etag) + _written_length(self.tags) + 256


@dataclass(slots=True)
class _Entry:
    response: CachedResponse
    expires: float


class LocalResponses:
    """This process's answers: an LRU bounded by bytes, with an index by tag.

    `usable` is False until whatever delivers purges to this process (a tail of the
    purge stream) is following them, and again whenever it stops: an answer kept here
    is only as fresh as the purges that reached it."""

    def __init__(self, max_bytes: int, ttl_seconds: float) -> None:
        self._max_bytes = max_bytes
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self._bytes = 0
        self.generation = 0  # bumped by every purge: a computation older than it is stale
        self.usable = False

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedResponse | None:
        if not self.usable:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= time.monotonic():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.response

    def put(self, key: str, response: CachedResponse, generation: int) -> bool:
        """Keep `response` unless a purge came since `generation` was read, or it is
        larger than the whole layer."""
        size = response.size
        if not self.usable or generation != self.generation or size > self._max_bytes:
            return False
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Entry(response, time.monotonic() + self._ttl)
        self._bytes += size
        for tag in response.tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while self._bytes > self._max_bytes:
            oldest = next(iter(self._entries))
            self._drop(oldest)
        return True

    def purge(self, tags: Iterable[str]) -> int:
        self.generation += 1
        dropped = 0
        for tag in tags:
            for key in self._by_tag.pop(tag, ()):
                if key in self._entries:
                    self._drop(key)
                    dropped += 1
        return dropped

    def following(self, yes: bool) -> None:
        """Purges reach this layer from now on (True), or may not (False: it is emptied
        and answers nothing). Either way, what was computed before may have missed a
        purge, so it is not stored."""
        if yes != self.usable:
            self.clear()
        self.usable = yes

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_tag.clear()
        self._bytes = 0

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.response.size
        for tag in entry.response.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]


class ResponseStore(Protocol):
    """The shared layer (Redis): answers every process can reuse, purged by tag."""

    async def fetch(self, key: str) -> tuple[CachedResponse | None, int | None]:
        """The answer under `key` and the store's purge epoch; (None, None) when the
        store cannot answer (nothing may then be stored for this request)."""
        ...

    async def store(self, key: str, response: CachedResponse, epoch: int) -> bool:
        """Keep `response` unless a purge ran since `epoch`; True when kept."""
        ...

    def follow_purges(self, local: LocalResponses) -> None:
        """Start delivering every purge to `local` (once; later calls cost a check)."""
        ...


class ResponsePurger(Protocol):
    async def purge(self, tags: Sequence[str]) -> None:
        """Drop every answer carrying one of `tags`, everywhere; raises when it could
        not (the event is then retried)."""
        ...


@dataclass(frozen=True, slots=True)
class ResponseHit:
    response: CachedResponse


@dataclass(frozen=True, slots=True)
class ResponseMiss:
    """Where to keep the answer once computed: the epoch and generation read before."""

    key: str
    epoch: int | None
    generation: int


class ResponseCache:
    """The two layers in order: this process's, then the shared store."""

    def __init__(
        self, local: LocalResponses, store: ResponseStore, *, max_entry_bytes: int
    ) -> None:
        self.local = local
        self._store = store
        self._max_entry_bytes = max_entry_bytes

    async def look_up(self, key: str) -> ResponseHit | ResponseMiss:
        local = self.local
        found = local.get(key)
        if found is not None:
            return ResponseHit(found)
        self._store.follow_purges(local)
        generation = local.generation
        shared, epoch = await self._store.fetch(key)
        if shared is not None:
            local.put(key, shared, generation)
            return ResponseHit(shared)
        return ResponseMiss(key, epoch, generation)

    def fits(self, body: bytes) -> bool:
        return len(body) <= self._max_entry_bytes

    async def keep(self, miss: ResponseMiss, response: CachedResponse) -> bool:
        if miss.epoch is None or not self.fits(response.body):
            return False
        if not await self._store.store(miss.key, response, miss.epoch):
            return False
        self.local.put(miss.key, response, miss.generation)
        return True
