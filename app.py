"""Composition root: Settings -> Container -> Starlette app (and the event worker).

uvicorn app:app            (reads Settings from the environment)
python app.py COMMAND      serve, migrate, seed, worker, ... (see commands.py; also the
                           `commerce` console script)
"""

from __future__ import annotations

if __name__ == "__main__":
    # `python app.py COMMAND` belongs to the command line. Hand over before this file
    # defines anything, and make commands.py the main module (alter_sys): the
    # composition root is then loaded once, as the module `app`, never a second time as
    # __main__ with its own copies of every class, and neither do the workers of
    # `serve --workers N`, which multiprocessing starts by re-running the main module.
    import runpy

    runpy.run_module("commands", run_name="__main__", alter_sys=True)
    raise SystemExit  # the rest of this file is the module `app`'s, not __main__'s

import asyncio
import contextlib
import functools
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from redis.asyncio import Redis, RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisError, SlotNotCoveredError
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from dataloaders.request_loaders import LoaderFactory
from domain.account_changes import AccountChanges, TokenLifetimes
from domain.account_mail import AccountMails
from domain.address_book import AddressBook
from domain.carts import MAX_LINES, MAX_QUANTITY, Carts, PricingRules
from domain.catalog_admin import CatalogAdmin
from domain.checkout import Checkout, CheckoutPolicy
from domain.customers import Accounts
from domain.discount_desk import DiscountAdmin
from domain.discount_finder import DiscountFinder
from domain.erasure import Erasure
from domain.events import CacheInvalidation, EventHandler, SearchIndexing
from domain.gift_card_desk import GiftCardDesk
from domain.live_updates import ConnectionQuota, LiveFeed, ObservedCartStore
from domain.notifications import LowStockAlerts, Mailer, OrderConfirmations
from domain.order_desk import OrderDesk
from domain.order_status import OrderStatusLookup, StatusTokens
from domain.payment_reconciler import PaymentReconciler, ReconcilePolicy
from domain.payments import PaymentGateway
from domain.persisted_queries import DocumentPolicy, Operation, PersistedDocuments, parse_manifest
from domain.refunds import RefundDesk
from domain.response_cache import LocalResponses, ResponseCache
from domain.response_purge import ResponsePurging
from domain.returns import ReturnDesk
from domain.reviews import Reviews
from domain.search import SearchIndex
from domain.shipping import Shipping, default_zone_methods
from domain.shipping_admin import ShippingAdmin
from domain.shopper_desk import ShopperDesk
from domain.webhook_delivery import SenderPolicy, WebhookFanOut, WebhookSender
from domain.webhook_log import WebhookLog
from domain.webhooks import RetryPolicy
from integrations.passwords import Argon2Passwords
from integrations.sandbox_gateway import SandboxGateway
from integrations.tracing import Tracing, process_tracing
from integrations.webhook_http import HttpxWebhookTransport
from observability import logs
from persistence.accounts.addresses import SqlAddressBook
from persistence.accounts.customers import CustomerColumns, SqlCustomerRepository
from persistence.accounts.partners import PartnerDirectory, SqlPartnerRepository
from persistence.accounts.sessions import RedisLoginThrottle, RedisSessionStore
from persistence.catalog.admin_repository import SqlCatalogEditor
from persistence.catalog.lookups import CachedCatalogLookups, DatabaseCatalogLookups
from persistence.catalog.repository import CatalogRepository
from persistence.catalog.reviews import SqlReviewRepository
from persistence.catalog.variant_owners import SqlVariantOwners
from persistence.db import Database, ReplicaPolicy, create_database, database_unavailable
from persistence.discounts.store import SqlDiscountStore
from persistence.events.consumer import ConsumerPolicy, StreamConsumer
from persistence.events.live_tail import LiveTail, RedisCartChanges
from persistence.events.relay import OutboxRelay
from persistence.events.worker import EventWorker
from persistence.gift_cards.code_key import gift_card_code_key
from persistence.gift_cards.store import SqlGiftCardStore
from persistence.migrate import PiiKeys
from persistence.orders.idempotency import SqlIdempotencyStore
from persistence.orders.notifications import SqlNotificationStore
from persistence.orders.order_details import SqlOrderDetails
from persistence.orders.order_store import SqlOrderStore
from persistence.orders.refund_store import SqlRefundStore
from persistence.orders.return_store import SqlReturnStore
from persistence.orders.status_token_key import status_token_key
from persistence.pii import BlindIndex, PiiCipher, pii_index_key, pii_keys
from persistence.redis.cart_store import RedisCartStore
from persistence.redis.client import RedisClient
from persistence.redis.failure_throttle import RedisFailureThrottle
from persistence.redis.persisted_documents import RedisDocumentStore
from persistence.redis.rate_limiter import RedisRateLimiter
from persistence.redis.record_cache import RecordCache
from persistence.redis.response_cache import RedisResponseCache
from persistence.redis.skip_window import SkipWindow
from persistence.search.cache import CachedSearchIndex
from persistence.search.documents import iter_search_documents
from persistence.search.postgres import PostgresSearchIndex
from persistence.search.sqlite import SqliteSearchIndex
from persistence.shipping.editor import SqlShippingEditor
from persistence.shipping.rates import SqlShippingRates
from persistence.webhooks.store import SqlWebhookStore
from resolvers.http.edge import EdgeApp
from resolvers.http.exchange import DirectHttp
from resolvers.http.graphql_over_http import GraphQLOverHttp
from resolvers.http.middleware import RequestMetaMiddleware, RequestTimeoutMiddleware
from resolvers.http.observation import RequestRecorder
from resolvers.http.persisted_queries import PartnerKeys, PersistedQueryHttp
from resolvers.http.request_body import WellFormedRequests
from resolvers.http.response_cache import ResponseCacheHttp, response_fingerprint
from resolvers.http.subscriptions import (
    CLOSE_SLOW_CONSUMER,
    LiveConnection,
    LiveLimits,
    LiveSubscriptionsHttp,
    TextFrames,
    close_socket,
)
from resolvers.http.tracing import TracingMiddleware
from resolvers.http.webhooks import stripe_webhook
from resolvers.schema import build_schema
from schema.context import Context, LiveSession
from schema.request_state import RequestState
from settings import RedisClusterNodes, Settings, redis_cluster_nodes, revealed

if TYPE_CHECKING:  # prometheus-client is imported only when metrics are on
    from observability.metrics import Metrics

log = logging.getLogger("commerce")

READY_DATABASE_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class Components:
    """Replacements for parts the container would build from the settings (tests pass
    ones that fail on purpose). Each is applied where the real one is made."""

    catalog: Callable[[Database, PiiCipher], CatalogRepository] | None = None  # a subclass
    search: Callable[[SearchIndex], SearchIndex] | None = None  # wraps the configured index

    def wrap_search(self, index: SearchIndex) -> SearchIndex:
        return index if self.search is None else self.search(index)


@dataclass
class Container:
    """Everything a request needs that outlives it; made in lifespan, closed after."""

    settings: Settings
    db: Database
    redis: RedisClient
    # The event worker's client: its XREADGROUP blocks up to EVENT_CONSUMER_BLOCK_MS,
    # which the request client's REDIS_TIMEOUT_SECONDS would cut short.
    events_redis: RedisClient
    cache: RecordCache
    catalog: CatalogRepository
    customers: SqlCustomerRepository
    accounts: Accounts
    address_book: AddressBook
    account_changes: AccountChanges
    erasure: Erasure
    carts: Carts
    cart_store: RedisCartStore  # for pii-rotate; requests go through `carts`
    reviews: Reviews
    pricing: PricingRules
    gateway: PaymentGateway
    checkout: Checkout
    orders: OrderDesk
    order_details: SqlOrderDetails
    status_tokens: StatusTokens
    order_status: OrderStatusLookup
    refunds: RefundDesk
    returns: ReturnDesk
    shoppers: ShopperDesk
    rate_limiter: RedisRateLimiter
    pii: PiiCipher
    documents: PersistedDocuments
    partners: PartnerDirectory
    public_documents: DocumentPolicy
    catalog_admin: CatalogAdmin
    shipping: Shipping
    shipping_admin: ShippingAdmin
    gift_cards: GiftCardDesk
    discounts: SqlDiscountStore
    discount_finder: DiscountFinder
    discount_admin: DiscountAdmin
    search: SearchIndex
    webhooks: SqlWebhookStore
    webhook_log: WebhookLog
    # Subscriptions: this process's listeners, the one stream reader feeding them
    # (started by the first subscription), and the open connections per client.
    live_feed: LiveFeed
    live_tail: LiveTail
    live_connections: ConnectionQuota
    # Traces, when OTEL_TRACES_EXPORTER names an exporter; None: nothing is traced.
    tracing: Tracing | None = None
    metrics: Metrics | None = None  # None: metrics are off, nothing observes
    # Whole answers of public catalog GETs (None: RESPONSE_CACHE_ENABLED is off); the
    # shared layer is also what the purging consumer writes to.
    response_cache: ResponseCache | None = None
    response_store: RedisResponseCache | None = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        redis: RedisClient | None = None,
        gateway: PaymentGateway | None = None,
        components: Components | None = None,
        tracing: Tracing | None = None,
        metrics: Metrics | None = None,
    ) -> Container:
        components = components or Components()
        db = create_database(
            settings.effective_database_url,
            revealed(settings.database_read_url),
            settings.database_pool_size,
            ReplicaPolicy(
                max_lag_seconds=settings.database_read_max_lag_seconds,
                probe_seconds=settings.database_read_probe_seconds,
                timeout_seconds=settings.database_read_timeout_seconds,
            ),
        )
        given = redis
        redis = given if given is not None else _redis(settings)
        if tracing is not None:
            tracing.instrument_engines(list(db.engines.values()))
            db.driver_reads = False  # a span per statement needs SQLAlchemy's execute
            # The request client only: the event worker's own client mostly waits in
            # blocking reads, and the consumers' handling spans say what it brought.
            tracing.instrument_redis(redis)
        events_redis = (
            redis  # a client the caller made, or fakeredis, whose data is its alone
            if given is not None or not settings.redis_url
            else _redis(
                settings,
                read_timeout=settings.event_consumer_block_ms / 1000
                + settings.redis_timeout_seconds,
            )
        )
        cache = RecordCache(
            redis,
            ttl_seconds=settings.cache_ttl_seconds,
            namespace=settings.cache_namespace,
            retry_after_seconds=settings.redis_retry_after_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
            on_lookup=None if metrics is None else metrics.cache_looked_up,
        )
        keys = pii_keys_of(settings)  # read (or, in development, made) once
        pii = PiiCipher(keys.encryption_keys)
        catalog = (components.catalog or CatalogRepository)(db, pii)
        lookups = CachedCatalogLookups(catalog, cache)
        blind_index = BlindIndex(keys.index_key)
        customers = SqlCustomerRepository(db, CustomerColumns(pii, blind_index))
        passwords = Argon2Passwords(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        sessions = RedisSessionStore(redis, ttl_seconds=settings.access_token_ttl_seconds)
        login_throttle = RedisLoginThrottle(
            redis,
            per_email=settings.login_failures_per_email,
            per_client=settings.login_failures_per_client,
            window_seconds=settings.login_failure_window_seconds,
            pseudonym=blind_index.of,
        )
        accounts = Accounts(customers, passwords, sessions, login_throttle)
        account_changes = AccountChanges(
            accounts,
            customers,
            passwords,
            sessions,
            login_throttle,
            RedisLoginThrottle(
                redis,
                per_email=settings.login_failures_per_email,
                per_client=settings.login_failures_per_client,
                window_seconds=settings.login_failure_window_seconds,
                prefix="recovery-requests",
                pseudonym=blind_index.of,
            ),
            pii,
            TokenLifetimes(
                password_reset_seconds=settings.password_reset_ttl_seconds,
                email_verification_seconds=settings.email_verification_ttl_seconds,
            ),
        )
        cart_store = RedisCartStore(
            redis,
            ttl_seconds=settings.cart_ttl_seconds,
            max_quantity=MAX_QUANTITY,
            max_lines=MAX_LINES,
            cipher=pii,
        )
        address_book = AddressBook(SqlAddressBook(db, pii))
        erasure = Erasure(customers, sessions, cart_store, address_book)
        # Every cart write through the services says so on the cart stream, for
        # cartChanged subscribers (pii-rotate's rewrites go to `cart_store` itself).
        observed_carts = ObservedCartStore(
            cart_store,
            RedisCartChanges(
                redis,
                max_length=settings.event_stream_max_length,
                timeout_seconds=settings.redis_timeout_seconds,
            ),
        )
        pricing = PricingRules(
            currency_code=settings.currency_code,
            shipping_flat_rate=settings.shipping_flat_rate,
            free_shipping_threshold=settings.free_shipping_threshold,
            tax_rates=settings.tax_rates,
        )
        shipping = Shipping(
            SqlShippingRates(db),
            default_zone_methods(settings.shipping_flat_rate, settings.free_shipping_threshold)
            if settings.shipping_default_zone
            else (),
        )
        gift_cards = GiftCardDesk(
            SqlGiftCardStore(db),
            RedisFailureThrottle(
                redis,
                name="gift-card",
                limit=settings.gift_card_failures_per_client,
                window_seconds=settings.gift_card_failure_window_seconds,
                pseudonym=blind_index.of,
            ),
            gift_card_code_key(revealed(settings.gift_card_code_key), settings.data_dir),
            settings.currency_code,
        )
        discounts = SqlDiscountStore(db)
        discount_finder = DiscountFinder(
            discounts, blind_index.of_email, settings.discount_cache_seconds
        )
        gateway = gateway or _gateway(settings)
        if metrics is not None:
            from integrations.metered_gateway import MeteredGateway

            gateway = MeteredGateway(gateway, metrics.gateway_called)
        if tracing is not None:
            gateway = tracing.gateway(gateway)
        order_store = SqlOrderStore(db, pii)
        status_tokens = StatusTokens(
            status_token_key(revealed(settings.order_status_token_key), settings.data_dir)
        )
        checkout = Checkout(
            observed_carts,
            DatabaseCatalogLookups(catalog),
            order_store,
            SqlIdempotencyStore(db),
            gateway,
            pricing,
            CheckoutPolicy(
                lock_seconds=settings.checkout_lock_seconds,
                wait_seconds=settings.checkout_wait_seconds,
                key_ttl_seconds=settings.idempotency_ttl_seconds,
                reservation_minutes=settings.order_reservation_minutes,
                gateway_timeout_seconds=settings.gateway_timeout_seconds,
            ),
            status_tokens,
            shipping=shipping,
            discounts=discount_finder,
            gift_cards=gift_cards,
        )
        order_status = OrderStatusLookup(
            order_store,
            RedisFailureThrottle(
                redis,
                name="order-status",
                limit=settings.order_status_failures_per_client,
                window_seconds=settings.order_status_failure_window_seconds,
                pseudonym=blind_index.of,
            ),
        )
        reconciler = PaymentReconciler(
            order_store,
            gateway,
            observed_carts,
            ReconcilePolicy(
                grace_seconds=settings.payment_reconcile_grace_seconds,
                recheck_seconds=settings.payment_reconcile_every_seconds,
                batch_size=settings.payment_reconcile_batch_size,
                gateway_timeout_seconds=settings.gateway_timeout_seconds,
            ),
        )
        refund_store = SqlRefundStore(db)
        order_desk = OrderDesk(
            order_store,
            gateway,
            observed_carts,
            reconciler=reconciler,
            status_lookup=order_status,
            gateway_refunds=refund_store,
        )
        refunds = RefundDesk(order_store, refund_store, gateway)
        shoppers = ShopperDesk(order_store, order_status, order_desk)
        webhooks = SqlWebhookStore(db, pii)
        document_store = RedisDocumentStore(
            redis,
            ttl_seconds=settings.apq_ttl_seconds,
            lru_bytes=settings.apq_lru_bytes,
            timeout_seconds=settings.redis_timeout_seconds,
            retry_after_seconds=settings.redis_retry_after_seconds,
        )
        live_feed = LiveFeed(settings.subscription_queue_size)
        response_store = RedisResponseCache(
            redis,
            events_redis,
            namespace=settings.cache_namespace,
            ttl_seconds=settings.response_cache_ttl_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
            retry_after_seconds=settings.redis_retry_after_seconds,
            # The purge tail's XREAD blocks: as long as the worker's on its own client,
            # under REDIS_TIMEOUT_SECONDS when it shares the request client.
            tail_block_ms=settings.event_consumer_block_ms
            if events_redis is not redis
            else max(10, int(settings.redis_timeout_seconds * 500)),
        )
        container = cls(
            settings=settings,
            db=db,
            redis=redis,
            events_redis=events_redis,
            cache=cache,
            catalog=catalog,
            customers=customers,
            accounts=accounts,
            address_book=address_book,
            account_changes=account_changes,
            erasure=erasure,
            carts=Carts(
                observed_carts,
                lookups,
                address_book,
                pricing=pricing,
                shipping=shipping,
                gift_cards=gift_cards,
            ),
            cart_store=cart_store,
            reviews=Reviews(SqlReviewRepository(db, pii), lookups, cache),
            pricing=pricing,
            gateway=gateway,
            checkout=checkout,
            orders=order_desk,
            order_details=SqlOrderDetails(db),
            status_tokens=status_tokens,
            order_status=order_status,
            refunds=refunds,
            returns=ReturnDesk(
                order_store,
                SqlReturnStore(db),
                refunds,
                shoppers,
                settings.return_window_days,
            ),
            shoppers=shoppers,
            pii=pii,
            rate_limiter=RedisRateLimiter(
                redis,
                capacity=settings.rate_limit_capacity,
                restore_rate=settings.rate_limit_restore_rate,
                timeout_seconds=settings.redis_timeout_seconds,
                retry_after_seconds=settings.redis_retry_after_seconds,
                local_share=settings.rate_limit_local_share,
                sync_seconds=settings.rate_limit_sync_ms / 1000,
                max_clients=settings.rate_limit_local_clients,
            ),
            documents=PersistedDocuments(document_store),
            partners=PartnerDirectory(
                SqlPartnerRepository(db), refresh_seconds=settings.partner_refresh_seconds
            ),
            public_documents=DocumentPolicy(
                persisted_only=settings.persisted_queries_only,
                manifest=load_manifests(settings.manifest_files),
            ),
            catalog_admin=CatalogAdmin(
                SqlCatalogEditor(db, settings.currency_code), cache, settings.currency_code
            ),
            shipping=shipping,
            shipping_admin=ShippingAdmin(SqlShippingEditor(db), settings.currency_code),
            gift_cards=gift_cards,
            discounts=discounts,
            discount_finder=discount_finder,
            discount_admin=DiscountAdmin(discounts, settings.currency_code, discount_finder.forget),
            webhooks=webhooks,
            webhook_log=WebhookLog(webhooks),
            search=_traced_search(
                components.wrap_search(search_index(db, settings, redis)), tracing
            ),
            live_feed=live_feed,
            live_tail=LiveTail(events_redis, live_feed, block_ms=settings.event_consumer_block_ms),
            live_connections=ConnectionQuota(settings.subscription_connections_per_client),
            tracing=tracing,
            metrics=metrics,
            response_cache=ResponseCache(
                LocalResponses(
                    settings.response_cache_local_bytes, settings.response_cache_ttl_seconds
                ),
                response_store,
                max_entry_bytes=settings.response_cache_max_entry_bytes,
            )
            if settings.response_cache_enabled
            else None,
            response_store=response_store,
        )
        live_feed.on_first_listener = container.live_tail.ensure_started
        if metrics is not None:
            # Each fallback's skip window tells the metrics of the failure that opened it.
            windows = {
                "record_cache": cache.window,
                "rate_limiter": container.rate_limiter.window,
                "persisted_queries": document_store.window,
                "search_cache": getattr(container.search, "window", None),
                "response_cache": response_store.window,
            }
            for component, window in windows.items():
                if isinstance(window, SkipWindow):
                    window.on_failure = functools.partial(metrics.redis_failed, component)
        return container

    async def close(self) -> None:
        await self.live_tail.stop()
        await self.rate_limiter.stop()  # its last spends, before the client closes
        if self.response_store is not None:
            await self.response_store.stop()
        for owner in (self.gateway, self.search):  # Stripe's and Elasticsearch's pools
            closer = getattr(owner, "aclose", None)
            if closer is not None:
                await closer()
        if self.events_redis is not self.redis:
            await self.events_redis.aclose()
        await self.redis.aclose()
        await self.db.dispose()


def _traced_search(index: SearchIndex, tracing: Tracing | None) -> SearchIndex:
    return index if tracing is None else tracing.search(index)


def pii_keys_of(settings: Settings) -> PiiKeys:
    """PII_ENCRYPTION_KEYS and PII_INDEX_KEY, else (development) the ones kept in DATA_DIR:
    what the container, `migrate` and `pii-rotate` use."""
    return PiiKeys(
        encryption_keys=pii_keys(revealed(settings.pii_encryption_keys), settings.data_dir),
        index_key=pii_index_key(revealed(settings.pii_index_key), settings.data_dir),
    )


def load_manifests(paths: list[str]) -> dict[str, Operation]:
    operations: dict[str, Operation] = {}
    for path in paths:
        operations.update(parse_manifest(Path(path).read_text()))
    return operations


def _gateway(settings: Settings) -> PaymentGateway:
    if settings.effective_payment_gateway == "stripe":
        from integrations.stripe_gateway import StripeGateway

        if not settings.stripe_api_key:  # Settings refuses this; model_copy skips validators
            raise ValueError("PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY")
        return StripeGateway(
            api_key=settings.stripe_api_key.get_secret_value(),
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.gateway_timeout_seconds,
        )
    return SandboxGateway()


def search_index(db: Database, settings: Settings, redis: RedisClient | None = None) -> SearchIndex:
    """PostgreSQL full-text on PostgreSQL; the simpler SQL search in the embedded mode;
    Elasticsearch when configured, answered by the SQL index whenever it cannot answer;
    with `redis`, answers cached until the index changes."""
    index: SearchIndex = PostgresSearchIndex(db) if db.is_postgres else SqliteSearchIndex(db)
    if settings.elasticsearch_url:
        from domain.search_fallback import FallbackSearchIndex
        from persistence.search.elasticsearch import create_elasticsearch_index

        documents = functools.partial(iter_search_documents, db)
        elastic = create_elasticsearch_index(settings, documents)
        index = FallbackSearchIndex(elastic, index, settings.search_fallback_retry_seconds)
    if redis is None or settings.search_cache_ttl_seconds == 0:
        return index
    return CachedSearchIndex(
        index,
        redis,
        ttl_seconds=settings.search_cache_ttl_seconds,
        timeout_seconds=settings.redis_timeout_seconds,
        namespace=settings.cache_namespace,
        retry_after_seconds=settings.redis_retry_after_seconds,
        # With a replica, a search there must see the change before the old answers go.
        settle=db.replica_replayed if db.replica is not None else None,
    )


def _redis(settings: Settings, *, read_timeout: float | None = None) -> RedisClient:
    """The client for `REDIS_URL` (fakeredis when unset): a Redis Cluster client when the
    URL or REDIS_CLUSTER says so. `read_timeout` replaces `REDIS_TIMEOUT_SECONDS` for a
    client whose commands block on purpose (XREADGROUP)."""
    if settings.redis_url:
        url = settings.redis_url.get_secret_value()
        options = redis_options(settings, read_timeout)
        if settings.redis_cluster_mode:
            return _redis_cluster(redis_cluster_nodes(url), options)
        return Redis.from_url(url, **options)
    import fakeredis  # embedded mode only

    return fakeredis.FakeAsyncRedis()


class _ClusterClient(RedisCluster):
    # The cluster client's own retry loop (a fresh slot map, another try) would also
    # resend a command that timed out; redis_options explains why we never do.
    # (redis-py's declared type is its own default tuple, TimeoutError included.)
    ERRORS_ALLOW_RETRY = (RedisConnectionError, ClusterDownError, SlotNotCoveredError)  # type: ignore[assignment]


def _redis_cluster(start: RedisClusterNodes, options: dict[str, Any]) -> RedisCluster:
    """redis-py follows MOVED (a slot moved for good: it updates its slot map) and ASK (a
    slot being migrated: that one command goes to the importing node) by itself, and
    reloads the slot map after a failover. The per-node connections never retry (the
    cluster client does, once, on a fresh slot map), as redis_options describes."""
    return _ClusterClient(
        startup_nodes=[ClusterNode(host, port) for host, port in start.nodes],
        username=start.username,
        password=start.password,
        ssl=start.tls,
        socket_timeout=options["socket_timeout"],
        socket_connect_timeout=options["socket_connect_timeout"],
        health_check_interval=options["health_check_interval"],
        retry=options["retry"],
    )


def redis_options(settings: Settings, read_timeout: float | None = None) -> dict[str, Any]:
    """How every Redis client of ours behaves when Redis hangs, dies or restarts.

    - `socket_timeout` bounds every command's write and read, including those nobody
      wrapped in `asyncio.timeout` (redis-py's default is 5 s; a SIGSTOPped server
      otherwise holds each request that long).
    - One immediate retry, on a fresh connection, for `ConnectionError` only: the socket
      was refused, reset or closed, which after a restart means the command died with
      the old server's connection, so sending it again applies it once. Never on a
      timeout: a hung server may still run the command it holds when it wakes (a retry
      could apply a cart script twice), and a retry would double the wait. On a cluster
      the one retry also follows a fresh slot map (a failover), and a failed-over
      cluster (CLUSTERDOWN) is retried once too.
    - `health_check_interval`: a connection idle that long is PINGed before use, so a
      connection that died while idle fails on the PING (reconnected by the retry)
      rather than on a script; under load connections are never idle that long, so the
      hot path pays nothing.
    """
    timeout = settings.redis_timeout_seconds
    return {
        "socket_timeout": timeout if read_timeout is None else read_timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "health_check_interval": settings.redis_health_check_seconds,
    }


class RunningContainer:
    """The app's Container while it runs. create_app hands this holder to what needs the
    container at request time (the GraphQL view, /readyz, webhooks, the statement
    counter); lifespan fills it. Nothing else reaches for the container."""

    __slots__ = ("_container",)

    def __init__(self) -> None:
        self._container: Container | None = None

    def __call__(self) -> Container:
        if self._container is None:
            raise RuntimeError("the app has not started: its lifespan makes the container")
        return self._container

    def start(self, container: Container) -> None:
        self._container = container


class GraphQLView(
    ResponseCacheHttp,
    LiveSubscriptionsHttp,
    PersistedQueryHttp,
    GraphQLOverHttp,
    WellFormedRequests,
    DirectHttp,
    GraphQL[Context, None],
):
    graphql_transport_ws_handler_class = LiveConnection
    websocket_adapter_class = TextFrames

    def __init__(
        self, settings: Settings, running: RunningContainer, tracing: Tracing | None = None
    ) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_tokens=settings.max_query_tokens,
                introspection=settings.introspection_enabled,
                batch_max=settings.graphql_batch_max,
                max_cost=settings.max_query_cost,
                expose_error_details=settings.environment == "development",
                max_string_length=settings.max_input_string_length,
                document_cache_bytes=settings.document_cache_bytes,
                tracer=None if tracing is None else tracing.tracer,
                read_replica=settings.database_read_url is not None,
                backend_unavailable=database_unavailable,
            ),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(
                seconds=settings.subscription_init_timeout_seconds
            ),
            max_subscriptions_per_connection=None,  # LiveConnection's, with a code
            # Browsers' WebSocket handshakes from other origins: the CORS origins.
            allowed_origins=settings.cors_allow_origins,
        )
        self.settings = settings
        self.public_max_age = settings.public_cache_max_age
        self.response_cache_fingerprint = response_fingerprint(
            self.schema.as_str(),
            settings.currency_code,
            settings.cache_namespace,
            settings.persisted_queries_only,
            settings.manifest_files,
            settings.max_page_size,
        )
        self._running = running
        self._tracing = tracing
        self._loaders: tuple[Container, LoaderFactory] | None = None
        self.live_limits = LiveLimits(
            max_subscriptions=settings.max_subscriptions_per_connection,
            ping_seconds=settings.subscription_ping_seconds,
            pong_timeout_seconds=settings.subscription_pong_timeout_seconds,
            quota=ConnectionQuota(0),  # replaced by the container's once it runs
        )

    def partner_keys(self) -> PartnerKeys:
        return self._running().partners

    def response_cache(self) -> ResponseCache | None:
        return self._running().response_cache

    async def run(self, request: Any, context: Any = None, root_value: Any = None) -> Any:
        if isinstance(request, WebSocket):  # the HTTP mixins have nothing to say here
            return await GraphQL.run(self, request)
        cached = await self.cached_answer(request)
        if cached is not None:
            return cached
        response = await super().run(request, context, root_value)
        await self.answered(request, response)
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        container = self._running()
        websocket = request if isinstance(request, WebSocket) else None
        if not isinstance(response, Response):
            # A WebSocket: extensions set status and headers on a sub-response no one
            # sends.
            response = Response()
            self.live_limits.quota = container.live_connections
        state = RequestState.of(request)
        partner = state.partner
        context = Context(
            request=request,
            state=state,
            response=response,
            settings=self.settings,
            catalog=container.catalog,
            loader_factory=self._loader_factory(container),
            accounts=container.accounts,
            account_changes=container.account_changes,
            erasure=container.erasure,
            carts=container.carts,
            reviews=container.reviews,
            pricing=container.pricing,
            checkout=container.checkout,
            orders=container.orders,
            order_status=container.order_status,
            catalog_admin=container.catalog_admin,
            shipping=container.shipping,
            shipping_admin=container.shipping_admin,
            gift_cards=container.gift_cards,
            discounts=container.discounts,
            discount_finder=container.discount_finder,
            discount_admin=container.discount_admin,
            rate_limiter=container.rate_limiter,
            documents=container.documents,
            document_policy=container.public_documents if partner is None else partner.policy,
            address_book=container.address_book,
            refunds=container.refunds,
            returns=container.returns,
            shoppers=container.shoppers,
            webhook_log=container.webhook_log,
            rate_limit=None if partner is None else self.settings.partner_tiers.get(partner.tier),
            search=container.search,
        )
        if websocket is not None:
            context.connection_params = {}  # until connection_init brings the payload
            context.live = LiveSession(container.live_feed, _closer(websocket))
        return context

    def _loader_factory(self, container: Container) -> LoaderFactory:
        made = self._loaders
        if made is None or made[0] is not container:
            tracer = None if self._tracing is None else self._tracing.tracer
            factory = LoaderFactory(
                container.catalog,
                container.cache,
                container.order_details,
                container.address_book,
                tracer,
            )
            made = self._loaders = (container, factory)
        return made[1]

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


def _closer(websocket: WebSocket) -> Callable[[], None]:
    """What a slow subscriber's overflow does: close its connection (4008), once."""
    closing: list[asyncio.Task[None]] = []

    def close() -> None:
        if not closing:
            reason = "slow consumer: too many undelivered events; resubscribe and query"
            closing.append(
                asyncio.ensure_future(close_socket(websocket, CLOSE_SLOW_CONSUMER, reason))
            )

    return close


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(running: RunningContainer, _: Request) -> Response:
    container = running()
    checks: dict[str, str] = {}
    try:
        async with (
            asyncio.timeout(READY_DATABASE_TIMEOUT),
            container.db.primary_reader.connect() as db,
        ):
            await db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", and says why
        checks["database"] = f"error: {type(error).__name__}"
    replica = container.db.replica
    # Reported, never "not ready": without the replica its reads run on the primary.
    extra = (
        {}
        if replica is None
        else {
            "replica": "in use" if replica.on_replica else (f"not in use: {replica.health.reason}")
        }
    )
    try:
        # A pooled connection left dead by a Redis restart fails fast and is replaced by
        # the client's one retry (redis_options), so the first check after it is a 200.
        async with asyncio.timeout(container.settings.redis_timeout_seconds):
            await container.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError, TimeoutError) as error:
        checks["redis"] = f"error: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks, **extra},
        status_code=200 if ready else 503,
    )


# The youngest generation is collected when allocations outrun deallocations by this
# many container objects. A request leaves no reference cycles (pinned by
# tests/integration/test_request_garbage.py), so in steady state that count only grows
# with what is alive at once: measured on the listing with 8 requests in flight, 700
# (CPython's default) collected 0.8 times per request, 7% of the CPU and most of the
# loop's short pauses; 10,000 collected 8 times in 2,000 requests (~4 ms each).
YOUNG_COLLECTION_THRESHOLD = 10_000


def _tune_garbage_collector() -> None:
    # Measured under load (product screen, 1 worker): with the default thresholds a full
    # collection ran every ~0.5 s and paused the loop ~50 ms, the bulk of the p99, so
    # full collections are made 100x rarer; what start-up built (schema, statements,
    # modules) lives as long as the process and is frozen out of every collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 10, 1000)


def create_app(
    settings: Settings,
    *,
    redis: RedisClient | None = None,
    gateway: PaymentGateway | None = None,
    components: Components | None = None,
    running: RunningContainer | None = None,
    tracing: Tracing | None = None,
) -> Starlette:
    """An app for these settings; engines and clients open in lifespan, not here.
    `redis`, `gateway` and `components` replace what the settings would give (tests pass
    instrumented or failing ones); `running` is the holder its lifespan fills with the
    Container (tests pass their own to reach the container); `tracing` replaces the
    process's OTEL_TRACES_EXPORTER one (tests export to memory)."""

    running = running if running is not None else RunningContainer()
    tracing = tracing if tracing is not None else process_tracing(settings)
    metrics = create_metrics(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        container = Container.create(settings, redis, gateway, components, tracing, metrics)
        running.start(container)
        await container.db.start()  # the replica's first probe; the primary until then
        await container.partners.reload()  # partners and their manifests, loaded at start
        _tune_garbage_collector()
        worker = build_event_worker(container) if settings.worker_in_process else None
        sampler = None
        if metrics is not None:
            sampler = asyncio.create_task(
                _sample_process(container, metrics), name="process-gauges"
            )
        try:
            if worker is not None:
                await worker.start()
            yield
        finally:
            if sampler is not None:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
                from observability.exposition import mark_this_process_dead

                mark_this_process_dead()
            if worker is not None:
                await worker.stop()
            await container.close()
            if tracing is not None:
                tracing.flush()  # what the last requests traced, before the process ends

    graphql = GraphQLView(settings, running, tracing)
    extra_routes: list[Route] = []
    if metrics is not None and settings.metrics_token is not None:
        from observability.exposition import MetricsEndpoint

        endpoint = MetricsEndpoint(settings.metrics_token.get_secret_value(), metrics)
        extra_routes.append(Route("/metrics", endpoint.respond, methods=["GET"]))
    starlette = EdgeApp(
        routes=[
            *extra_routes,
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", functools.partial(readyz, running), methods=["GET"]),
            Route(
                "/webhooks/stripe",
                stripe_webhook(settings, lambda: running().orders),
                methods=["POST"],
            ),
        ],
        lifespan=lifespan,
        max_body_size=settings.max_body_bytes,
    )
    starlette.add_middleware(RequestTimeoutMiddleware, seconds=settings.request_timeout_seconds)
    if settings.cors_allow_origins:
        starlette.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_allow_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Api-Key", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After"],
            max_age=600,
        )
    recorder = (
        RequestRecorder(metrics, settings.requests_logged)
        if metrics is not None or settings.requests_logged
        else None
    )
    starlette.add_middleware(
        RequestMetaMiddleware,
        statement_counter=(lambda: running().db.counter)
        if settings.statement_count_exposed or recorder is not None
        else None,
        expose_statements=settings.statement_count_exposed,
        observer=recorder,
    )
    if settings.trusted_proxies:
        # Outermost, so everything (login throttle, rate limits) sees the forwarded
        # client. Here rather than in uvicorn, which trusts loopback unless told not to:
        # the same rule holds under `python app.py serve` and `uvicorn app:app
        # --no-proxy-headers`, or any ASGI server.
        starlette.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    if tracing is not None:
        # Outermost: the span covers everything the request costs us.
        starlette.add_middleware(
            TracingMiddleware,
            tracer=tracing.tracer,
            routes=frozenset(
                path for route in starlette.routes if (path := getattr(route, "path", None))
            ),
        )
    # GET and POST /graphql: the same middlewares, without Starlette's router (edge.py).
    starlette.serve_graphql(graphql, settings.max_body_bytes)
    return starlette


def create_metrics(settings: Settings) -> Metrics | None:
    """This process's metrics when METRICS_PORT or METRICS_TOKEN is set, else None (and
    prometheus-client stays unimported)."""
    if not settings.metrics_enabled:
        return None
    from observability.metrics import Metrics

    return Metrics(settings.metrics_operation_names)


async def _sample_process(container: Container, metrics: Metrics) -> None:
    from persistence.events.gauges import sample_live_feed, sample_pools

    delivered = 0
    while True:
        sample_pools(container.db, metrics)
        delivered = sample_live_feed(container.live_feed, metrics, delivered)
        await asyncio.sleep(container.settings.metrics_sample_seconds)


def build_event_worker(container: Container) -> EventWorker:
    """The outbox relay and one consumer group per handler, on the container's clients."""
    settings = container.settings
    cipher = container.pii  # the keys are read (or, in development, made) once
    mailer: Mailer | None = None
    if settings.smtp_url:
        from integrations.mailer import SmtpMailer

        mailer = SmtpMailer(settings.smtp_url.get_secret_value(), settings.mail_from)
    notifications = SqlNotificationStore(container.db, cipher)
    handlers: list[EventHandler] = [
        SearchIndexing(container.search, SqlVariantOwners(container.db)),
        CacheInvalidation(container.cache),
        OrderConfirmations(
            SqlOrderStore(container.db, cipher),
            notifications,
            mailer,
            container.status_tokens,
            settings.storefront_url,
            container.order_details,
        ),
        LowStockAlerts(notifications, settings.low_stock_threshold),
        AccountMails(container.customers, notifications, mailer, cipher),
        WebhookFanOut(container.webhooks, settings.currency_code, webhook_retry_policy(settings)),
    ]
    if container.response_store is not None:
        handlers.append(
            ResponsePurging(
                container.cache,
                container.response_store,
                SqlVariantOwners(container.db),
                settle=container.db.replica_replayed if container.db.replica is not None else None,
            )
        )
    policy = ConsumerPolicy(
        block_ms=settings.event_consumer_block_ms,
        claim_idle_ms=settings.event_claim_idle_ms,
        max_deliveries=settings.event_max_deliveries,
        done_ttl_seconds=settings.event_done_ttl_seconds,
        dead_letter_max_length=settings.event_stream_max_length,
    )
    tracer = None if container.tracing is None else container.tracing.tracer
    outbox_relay = OutboxRelay(
        container.db,
        container.events_redis,
        batch_size=settings.event_relay_batch_size,
        poll_seconds=settings.event_relay_poll_seconds,
        stream_max_length=settings.event_stream_max_length,
        tracer=tracer,
    )
    kept = timedelta(hours=settings.outbox_retention_hours)
    consumers = [
        StreamConsumer(container.events_redis, handler, policy, tracer=tracer)
        for handler in handlers
    ]
    samplers: list[tuple[str, Callable[[], Awaitable[int]], float]] = []
    if container.metrics is not None:
        from persistence.events.gauges import EventGauges

        gauges = EventGauges(container.db, container.events_redis, consumers, container.metrics)
        samplers.append(("metrics-sample", gauges.sample, settings.metrics_sample_seconds))
    webhook_transport = HttpxWebhookTransport(
        timeout_seconds=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private_addresses,
        max_connections=settings.webhook_concurrency,
    )
    webhook_sender = WebhookSender(
        container.webhooks,
        webhook_transport,
        notifications,
        SenderPolicy(
            concurrency=settings.webhook_concurrency,
            per_webhook=settings.webhook_per_webhook_concurrency,
            poll_seconds=settings.webhook_poll_seconds,
            lease_seconds=settings.webhook_timeout_seconds + 30,
            disable_after_seconds=settings.webhook_disable_after_days * 86400,
        ),
        webhook_retry_policy(settings),
    )
    return EventWorker(
        outbox_relay,
        consumers,
        loops=[("webhook-sender", webhook_sender)],
        on_stop=[webhook_transport.aclose],
        jobs=[
            ("orders-expire", container.orders.expire_unpaid),
            ("idempotency-cleanup", container.checkout.delete_expired_keys),
            ("outbox-cleanup", functools.partial(outbox_relay.delete_published, kept)),
            (
                "webhook-deliveries-cleanup",
                functools.partial(
                    container.webhooks.delete_finished,
                    timedelta(days=settings.webhook_delivery_retention_days),
                ),
            ),
        ],
        jobs_every_seconds=settings.housekeeping_every_seconds,
        interval_jobs=[
            (
                "payments-reconcile",
                container.orders.reconcile_payments,
                settings.payment_reconcile_every_seconds,
            ),
            *samplers,
        ],
    )


def webhook_retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        first_delay_seconds=settings.webhook_retry_first_seconds,
        max_delay_seconds=settings.webhook_retry_max_seconds,
        give_up_after_seconds=settings.webhook_retry_window_seconds,
    )


def __getattr__(name: str) -> Any:
    # `uvicorn app:app` builds the app from the environment when it asks, not at import.
    if name == "app":
        settings = Settings()
        configure_logging(settings)
        return create_app(settings)
    raise AttributeError(name)


def configure_logging(settings: Settings) -> None:
    """JSON lines or plain text (LOG_FORMAT) for every logger, uvicorn's included."""
    logs.configure(settings.log_level, settings.effective_log_format)
