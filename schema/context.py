"""The per-request context every resolver receives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeAlias

import strawberry
from starlette.requests import HTTPConnection
from starlette.responses import Response
from strawberry.types import ExecutionContext

from dataloaders.addresses import CustomerAddressByIdLoader
from dataloaders.catalog import CatalogLoaders
from dataloaders.orders import OrderLoaders
from dataloaders.request_loaders import LoaderFactory
from domain.account_changes import AccountChanges
from domain.address_book import AddressBook
from domain.carts import Carts, PricingRules
from domain.catalog import Product
from domain.catalog_admin import CatalogAdmin
from domain.checkout import Checkout
from domain.customers import Accounts, Customer
from domain.discount_desk import DiscountAdmin, DiscountStore
from domain.discount_finder import DiscountFinder
from domain.erasure import Erasure
from domain.errors import ServiceUnavailable, UnauthenticatedError
from domain.gift_card_desk import GiftCardDesk
from domain.live_updates import Listener, LiveFeed
from domain.order_desk import OrderDesk
from domain.order_status import OrderStatusLookup
from domain.partners import Partner
from domain.persisted_queries import DocumentPolicy, PersistedDocuments
from domain.ports import CatalogReader
from domain.rate_limits import BucketSize, RateLimiter
from domain.refunds import RefundDesk
from domain.returns import ReturnDesk
from domain.reviews import Reviews
from domain.search import SearchIndex
from domain.shipping import Shipping
from domain.shipping_admin import ShippingAdmin
from domain.shopper_desk import ShopperDesk
from domain.webhook_log import WebhookLog
from schema.request_state import RequestState
from settings import Settings


@dataclass(slots=True)
class Context:
    request: HTTPConnection  # the HTTP request, or the WebSocket
    state: RequestState  # what the HTTP edge and the resolvers tell each other
    # The HTTP sub-response: status and headers set by resolvers and extensions.
    response: Response
    settings: Settings
    catalog: CatalogReader
    # Makes this request's loader groups on first use (`loaders`, `order_loaders`,
    # `address_by_id`): a request pays only for the loaders it touches.
    loader_factory: LoaderFactory
    accounts: Accounts
    account_changes: AccountChanges
    erasure: Erasure
    carts: Carts
    reviews: Reviews
    pricing: PricingRules
    checkout: Checkout
    orders: OrderDesk
    order_status: OrderStatusLookup
    catalog_admin: CatalogAdmin
    shipping: Shipping
    shipping_admin: ShippingAdmin
    gift_cards: GiftCardDesk
    discounts: DiscountStore
    discount_finder: DiscountFinder
    discount_admin: DiscountAdmin
    documents: PersistedDocuments
    document_policy: DocumentPolicy  # the public one, or the calling partner's
    address_book: AddressBook
    refunds: RefundDesk
    returns: ReturnDesk
    shoppers: ShopperDesk
    webhook_log: WebhookLog
    rate_limiter: RateLimiter | None = None
    rate_limit: BucketSize | None = None  # the partner tier's bucket size
    _viewer: asyncio.Future[Customer | None] | None = field(default=None)
    _session: asyncio.Future[int | None] | None = field(default=None)
    search: SearchIndex | None = None  # the configured product search index
    # A WebSocket connection's: the connection_init payload (strawberry sets it) and
    # the connection's live session; None over HTTP.
    connection_params: dict[str, object] | None = None
    live: LiveSession | None = None
    _loaders: CatalogLoaders | None = None
    _order_loaders: OrderLoaders | None = None
    _address_by_id: CustomerAddressByIdLoader | None = None

    @property
    def loaders(self) -> CatalogLoaders:
        """The request's catalog loaders, made the first time anything asks."""
        loaders = self._loaders
        if loaders is None:
            loaders = self._loaders = self.loader_factory.catalog()
        return loaders

    @property
    def order_loaders(self) -> OrderLoaders:
        loaders = self._order_loaders
        if loaders is None:
            loaders = self._order_loaders = self.loader_factory.orders()
        return loaders

    @property
    def address_by_id(self) -> CustomerAddressByIdLoader:
        loader = self._address_by_id
        if loader is None:
            loader = self._address_by_id = self.loader_factory.address_by_id()
        return loader

    def clear_loaders(self) -> None:
        """Drop what the loaders made so far hold (none is made to be cleared)."""
        if self._loaders is not None:
            self._loaders.clear()
        if self._order_loaders is not None:
            self._order_loaders.clear()
        if self._address_by_id is not None:
            self._address_by_id.clear_all()

    @property
    def partner(self) -> Partner | None:
        """The partner whose valid X-Api-Key the request carried."""
        return self.state.partner

    @property
    def access_token(self) -> str | None:
        params = self.connection_params
        if params is not None:  # a WebSocket: the token came in connection_init
            header = params.get("Authorization", params.get("authorization"))
            if not isinstance(header, str) or len(header) > MAX_TOKEN_HEADER:
                return None
            scheme, _, token = header.partition(" ")
            return token.strip() or None if scheme.lower() == "bearer" else None
        scheme, _, token = self.request.headers.get("authorization", "").partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None

    async def rate_limit_key(self) -> str:
        """Whose rate-limit bucket pays: the partner, else the owner of a live session
        (all of a customer's tokens share one bucket), else the client address. An
        unverified token never picks a bucket: a made-up one pays from the address's."""
        if self.partner is not None:
            return f"partner:{self.partner.id}"
        try:
            owner = await self.session_customer_id()
        except ServiceUnavailable:  # no session store: the limiter is failing open too
            owner = None
        if owner is not None:
            return f"customer:{owner}"
        return "ip:" + self.client_address

    @property
    def client_address(self) -> str:
        client = self.request.client
        return client.host if client else "unknown"

    def forget_loaded(self) -> None:
        """Forget what the loaders hold, and who the session belongs to: a
        subscription's next event is a new read, as fresh (and as batched) as the same
        query would be, so a token logged out or revoked since `connection_init` stops
        seeing what only its customer may."""
        self._session = None
        self._viewer = None
        self.clear_loaders()

    def mark_private(self) -> None:
        """This answer holds someone's data: it must never be cached publicly."""
        self.state.private_data = True

    async def viewer(self) -> Customer | None:
        """The signed-in customer, looked up once per request and only when asked for.
        A missing, unknown, expired or revoked token means a guest."""
        self.mark_private()
        if self._viewer is None:
            self._viewer = asyncio.ensure_future(self._load_viewer())
        return await self._viewer

    async def session_customer_id(self) -> int | None:
        """The customer id the access token's session belongs to: one session-store read,
        made at most once per request and shared by the rate limiter and the viewer."""
        token = self.access_token
        if token is None:
            return None
        if self._session is None:
            self._session = asyncio.ensure_future(self.accounts.session_owner(token))
        return await self._session

    def known_customer_id(self) -> int | None:
        """The session's customer id if this request has already looked it up (the
        rate limiter or a resolver did); never a lookup of its own."""
        session = self._session
        if session is None or not session.done() or session.cancelled():
            return None
        return None if session.exception() is not None else session.result()

    async def _load_viewer(self) -> Customer | None:
        customer_id = await self.session_customer_id()
        return None if customer_id is None else await self.accounts.customer(customer_id)

    async def viewer_id(self) -> int | None:
        viewer = await self.viewer()
        return None if viewer is None else viewer.id

    async def can_see(self, product: Product | None) -> bool:
        """Shoppers see active products; signed-in staff see drafts and archived ones
        too. The viewer is only looked up for a product a shopper could not see."""
        if product is None:
            return False
        if product.is_visible:
            return True
        if self.access_token is None:
            return False
        viewer = await self.viewer()
        return viewer is not None and viewer.is_staff

    async def require_viewer(self) -> Customer:
        viewer = await self.viewer()
        if viewer is None:
            raise UnauthenticatedError()
        return viewer


MAX_TOKEN_HEADER = 1_024  # a longer connection_init Authorization is nobody's token


class LiveSession:
    """One WebSocket connection's subscriptions: listeners on the process's feed, all
    dropped with the connection; a slow one closes the connection (`on_slow`)."""

    __slots__ = ("_feed", "_listeners", "_on_slow")

    def __init__(self, feed: LiveFeed, on_slow: Callable[[], None]) -> None:
        self._feed = feed
        self._on_slow = on_slow
        self._listeners: set[Listener] = set()

    def listen(self, keys: Iterable[str]) -> Listener:
        listener = self._feed.listen(keys, self._on_slow)
        self._listeners.add(listener)
        return listener

    def watch(self, listener: Listener, keys: Iterable[str]) -> None:
        self._feed.watch(listener, keys)

    def drop(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.discard(listener)
            self._feed.drop(listener)

    def close(self) -> None:
        for listener in list(self._listeners):
            self.drop(listener)


def context_of(execution: ExecutionContext) -> Context | None:
    """The request's Context in a schema extension; None when the schema is executed
    without one (the unit tests run it directly)."""
    context = execution.context
    return context if isinstance(context, Context) else None


Info: TypeAlias = strawberry.Info[Context, None]
