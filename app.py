"""Composition root: Settings -> Container -> Starlette app, and the command line.

python app.py serve | migrate | seed --products N | worker | export-schema
uvicorn app:app            (reads Settings from the environment)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from strawberry.asgi import GraphQL

from dataloaders.catalog import CatalogLoaders
from domain.carts import MAX_LINES, MAX_QUANTITY, Carts, PricingRules
from domain.catalog_admin import CatalogAdmin
from domain.checkout import Checkout, CheckoutPolicy
from domain.customers import Accounts
from domain.events import CacheInvalidation, EventHandler, SearchIndexing
from domain.notifications import LowStockAlerts, Mailer, OrderConfirmations
from domain.order_desk import OrderDesk
from domain.payments import PaymentGateway
from domain.persisted_queries import DocumentPolicy, Operation, PersistedDocuments, parse_manifest
from domain.reviews import Reviews
from domain.search import SearchIndex
from integrations.passwords import Argon2Passwords
from integrations.sandbox_gateway import SandboxGateway
from persistence.cart_store import RedisCartStore
from persistence.catalog_admin_repository import SqlCatalogEditor
from persistence.catalog_lookups import CachedCatalogLookups, DatabaseCatalogLookups
from persistence.catalog_repository import CatalogRepository
from persistence.customer_repository import SqlCustomerRepository
from persistence.db import Database, create_database
from persistence.event_relay import OutboxRelay
from persistence.event_worker import EventWorker
from persistence.notification_store import SqlNotificationStore
from persistence.order_store import SqlIdempotencyStore, SqlOrderStore
from persistence.partner_repository import PartnerDirectory, SqlPartnerRepository
from persistence.persisted_documents import RedisDocumentStore
from persistence.pii import PiiCipher, pii_keys
from persistence.rate_limiter import RedisRateLimiter
from persistence.record_cache import RecordCache
from persistence.review_repository import SqlReviewRepository
from persistence.search_documents import iter_search_documents
from persistence.search_postgres import PostgresSearchIndex
from persistence.search_sqlite import SqliteSearchIndex
from persistence.sessions import RedisLoginThrottle, RedisSessionStore
from persistence.stream_consumer import ConsumerPolicy, StreamConsumer
from persistence.variant_owners import SqlVariantOwners
from resolvers.http_semantics import GraphQLOverHttp
from resolvers.middleware import RequestMetaMiddleware, RequestTimeoutMiddleware
from resolvers.persisted_queries import PersistedQueryHttp
from resolvers.schema import build_schema
from resolvers.webhooks import stripe_webhook
from schema.context import Context
from settings import Settings

log = logging.getLogger("commerce")

READY_DATABASE_TIMEOUT = 2.0
ROOT = Path(__file__).resolve().parent


@dataclass
class Container:
    """Everything a request needs that outlives it; made in lifespan, closed after."""

    settings: Settings
    db: Database
    redis: Redis
    cache: RecordCache
    catalog: CatalogRepository
    customers: SqlCustomerRepository
    accounts: Accounts
    carts: Carts
    reviews: Reviews
    pricing: PricingRules
    gateway: PaymentGateway
    checkout: Checkout
    orders: OrderDesk
    rate_limiter: RedisRateLimiter
    documents: PersistedDocuments
    partners: PartnerDirectory
    public_documents: DocumentPolicy
    catalog_admin: CatalogAdmin
    search: SearchIndex

    @classmethod
    def create(
        cls, settings: Settings, redis: Redis | None = None, gateway: PaymentGateway | None = None
    ) -> Container:
        db = create_database(
            settings.effective_database_url, settings.database_read_url, settings.database_pool_size
        )
        redis = redis if redis is not None else _redis(settings)
        cache = RecordCache(
            redis,
            ttl_seconds=settings.cache_ttl_seconds,
            namespace=settings.cache_namespace,
            retry_after_seconds=settings.redis_retry_after_seconds,
            timeout_seconds=settings.redis_timeout_seconds,
        )
        catalog = CatalogRepository(db)
        lookups = CachedCatalogLookups(catalog, cache)
        customers = SqlCustomerRepository(db)
        accounts = Accounts(
            customers,
            Argon2Passwords(
                time_cost=settings.argon2_time_cost,
                memory_cost_kib=settings.argon2_memory_cost_kib,
                parallelism=settings.argon2_parallelism,
            ),
            RedisSessionStore(redis, ttl_seconds=settings.access_token_ttl_seconds),
            RedisLoginThrottle(
                redis,
                per_email=settings.login_failures_per_email,
                per_client=settings.login_failures_per_client,
                window_seconds=settings.login_failure_window_seconds,
            ),
        )
        cart_store = RedisCartStore(
            redis,
            ttl_seconds=settings.cart_ttl_seconds,
            max_quantity=MAX_QUANTITY,
            max_lines=MAX_LINES,
        )
        pricing = PricingRules(
            currency_code=settings.currency_code,
            shipping_flat_rate=settings.shipping_flat_rate,
            free_shipping_threshold=settings.free_shipping_threshold,
            tax_rates=settings.tax_rates,
        )
        gateway = gateway or _gateway(settings)
        order_store = SqlOrderStore(
            db, PiiCipher(pii_keys(settings.pii_encryption_keys, settings.data_dir))
        )
        checkout = Checkout(
            cart_store,
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
            ),
        )
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            cache=cache,
            catalog=catalog,
            customers=customers,
            accounts=accounts,
            carts=Carts(cart_store, lookups),
            reviews=Reviews(SqlReviewRepository(db), lookups, cache),
            pricing=pricing,
            gateway=gateway,
            checkout=checkout,
            orders=OrderDesk(order_store, gateway, cart_store),
            rate_limiter=RedisRateLimiter(
                redis,
                capacity=settings.rate_limit_capacity,
                restore_rate=settings.rate_limit_restore_rate,
                timeout_seconds=settings.redis_timeout_seconds,
            ),
            documents=PersistedDocuments(
                RedisDocumentStore(
                    redis,
                    ttl_seconds=settings.apq_ttl_seconds,
                    lru_size=settings.apq_lru_size,
                    timeout_seconds=settings.redis_timeout_seconds,
                )
            ),
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
            search=search_index(db, settings),
        )

    async def close(self) -> None:
        for owner in (self.gateway, self.search):  # Stripe's and Elasticsearch's pools
            closer = getattr(owner, "aclose", None)
            if closer is not None:
                await closer()
        await self.redis.aclose()
        await self.db.dispose()


def load_manifests(paths: list[str]) -> dict[str, Operation]:
    operations: dict[str, Operation] = {}
    for path in paths:
        operations.update(parse_manifest(Path(path).read_text()))
    return operations


def _gateway(settings: Settings) -> PaymentGateway:
    if settings.effective_payment_gateway == "stripe":
        from integrations.stripe_gateway import StripeGateway

        assert settings.stripe_api_key, "PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY"
        return StripeGateway(
            api_key=settings.stripe_api_key,
            api_base=settings.stripe_api_base,
            timeout_seconds=settings.gateway_timeout_seconds,
        )
    return SandboxGateway()


def search_index(db: Database, settings: Settings) -> SearchIndex:
    """PostgreSQL full-text on PostgreSQL; the simpler SQL search in the embedded mode;
    Elasticsearch when configured, answered by the SQL index whenever it cannot answer."""
    sql: SearchIndex = PostgresSearchIndex(db) if db.is_postgres else SqliteSearchIndex(db)
    if not settings.elasticsearch_url:
        return sql
    from domain.search_fallback import FallbackSearchIndex
    from persistence.search_elasticsearch import create_elasticsearch_index

    elastic = create_elasticsearch_index(settings, functools.partial(iter_search_documents, db))
    return FallbackSearchIndex(elastic, sql, settings.search_fallback_retry_seconds)


def _redis(settings: Settings) -> Redis:
    if settings.redis_url:
        # No socket_timeout: RecordCache puts one deadline on each round trip instead.
        return Redis.from_url(
            settings.redis_url, socket_connect_timeout=settings.redis_timeout_seconds
        )
    import fakeredis  # embedded mode only

    return fakeredis.FakeAsyncRedis()


class GraphQLView(PersistedQueryHttp, GraphQLOverHttp, GraphQL[Context, None]):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            build_schema(
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_query_aliases,
                max_tokens=settings.max_query_tokens,
                introspection=settings.introspection_enabled,
                batch_max=settings.graphql_batch_max,
                max_cost=settings.max_query_cost,
                expose_error_details=settings.environment == "development",
            ),
            graphql_ide="graphiql" if settings.graphiql_enabled else None,
        )
        self.settings = settings
        self.public_max_age = settings.public_cache_max_age

    async def get_context(self, request: Any, response: Any) -> Context:
        container: Container = request.app.state.container
        partner = getattr(request.state, "partner", None)
        return Context(
            request=request,
            settings=self.settings,
            catalog=container.catalog,
            loaders=CatalogLoaders.create(container.catalog, container.cache),
            accounts=container.accounts,
            carts=container.carts,
            reviews=container.reviews,
            pricing=container.pricing,
            checkout=container.checkout,
            orders=container.orders,
            catalog_admin=container.catalog_admin,
            response=response,
            rate_limiter=container.rate_limiter,
            documents=container.documents,
            document_policy=container.public_documents if partner is None else partner.policy,
            partner=partner,
            rate_limit=None if partner is None else self.settings.partner_tiers.get(partner.tier),
            search=container.search,
        )

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


async def healthz(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    container = request.app.state.container
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(READY_DATABASE_TIMEOUT), container.db.reader.connect() as db:
            await db.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as error:  # any failure means "not ready", and says why
        checks["database"] = f"error: {type(error).__name__}"
    try:
        async with asyncio.timeout(container.settings.redis_timeout_seconds):
            await container.redis.ping()
        checks["redis"] = "ok"
    except (RedisError, OSError, TimeoutError) as error:
        checks["redis"] = f"error: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, status_code=200 if ready else 503
    )


def _tune_garbage_collector() -> None:
    # Measured under load (product screen, 1 worker): with the default thresholds a full
    # collection ran every ~0.5 s and paused the loop ~50 ms, the bulk of the p99. A
    # request leaves only ~800 objects in cycles, and the young generations reclaim them,
    # so full collections are made 100x rarer; what start-up built (schema, statements,
    # modules) lives as long as the process and is frozen out of every collection.
    gc.collect()
    gc.freeze()
    gc.set_threshold(700, 10, 1000)


def create_app(
    settings: Settings, *, redis: Redis | None = None, gateway: PaymentGateway | None = None
) -> Starlette:
    """An app for these settings; engines and clients open in lifespan, not here.
    `redis` and `gateway` replace what the settings would give (tests pass instrumented
    ones)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        container = Container.create(settings, redis, gateway)
        app.state.container = container
        await container.partners.reload()  # partners and their manifests, loaded at start
        _tune_garbage_collector()
        worker = build_event_worker(container) if settings.worker_in_process else None
        try:
            if worker is not None:
                await worker.start()
            yield
        finally:
            if worker is not None:
                await worker.stop()
            await container.close()

    graphql = GraphQLView(settings)
    starlette = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
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
    starlette.add_middleware(
        RequestMetaMiddleware, count_statements=settings.statement_count_exposed
    )
    return starlette


def build_event_worker(container: Container) -> EventWorker:
    """The outbox relay and one consumer group per handler, on the container's clients."""
    settings = container.settings
    cipher = PiiCipher(pii_keys(settings.pii_encryption_keys, settings.data_dir))
    mailer: Mailer | None = None
    if settings.smtp_url:
        from integrations.mailer import SmtpMailer

        mailer = SmtpMailer(settings.smtp_url, settings.mail_from)
    notifications = SqlNotificationStore(container.db, cipher)
    handlers: list[EventHandler] = [
        # `container.search` arrives with the search branch; until then indexing is skipped.
        SearchIndexing(getattr(container, "search", None), SqlVariantOwners(container.db)),
        CacheInvalidation(container.cache),
        OrderConfirmations(SqlOrderStore(container.db, cipher), notifications, mailer),
        LowStockAlerts(notifications, settings.low_stock_threshold),
    ]
    policy = ConsumerPolicy(
        block_ms=settings.event_consumer_block_ms,
        claim_idle_ms=settings.event_claim_idle_ms,
        max_deliveries=settings.event_max_deliveries,
        done_ttl_seconds=settings.event_done_ttl_seconds,
        dead_letter_max_length=settings.event_stream_max_length,
    )
    outbox_relay = OutboxRelay(
        container.db,
        container.redis,
        batch_size=settings.event_relay_batch_size,
        poll_seconds=settings.event_relay_poll_seconds,
        stream_max_length=settings.event_stream_max_length,
    )
    return EventWorker(
        outbox_relay,
        [StreamConsumer(container.redis, handler, policy) for handler in handlers],
    )


def __getattr__(name: str) -> Any:
    # `uvicorn app:app` builds the app from the environment when it asks, not at import.
    if name == "app":
        settings = Settings()
        configure_logging(settings)
        return create_app(settings)
    raise AttributeError(name)


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


# -- command line ---------------------------------------------------------------------


async def _migrate(settings: Settings) -> None:
    from persistence.migrate import upgrade

    await upgrade(settings.effective_database_url)
    print("migrated to head")


async def _seed(settings: Settings, products: int, seed: int, if_empty: bool) -> None:
    from persistence.search_documents import search_documents_exist
    from persistence.seed import catalog_is_empty, seed_catalog

    db = create_database(settings.effective_database_url)
    try:
        if not await catalog_is_empty(db):
            if if_empty:
                # A catalog seeded before search existed gets its index now (`make run`).
                if not await search_documents_exist(db):
                    count = await search_index(db, settings).rebuild()
                    print(f"indexed {count} products for search")
                print("catalog already seeded; nothing to do")
                return
            raise SystemExit("the catalog is not empty; seed only runs on an empty catalog")
        report = await seed_catalog(
            db, products=products, seed=seed, currency_code=settings.currency_code
        )
        print(
            f"seeded {report.products} products, {report.variants} variants, "
            f"{report.reviews} reviews, {report.categories} categories, "
            f"{report.customers} customers in {report.seconds:.1f}s"
        )
        print(f"indexed {await search_index(db, settings).rebuild()} products for search")
    finally:
        await db.dispose()


async def _create_staff(settings: Settings, email: str, password: str, name: str) -> None:
    from domain.customers import check_new_password, normalize_email
    from domain.errors import Rejected

    try:
        email = normalize_email(email)
    except Rejected as rejected:
        raise SystemExit(rejected.errors[0].message) from None
    if problems := check_new_password(password):
        raise SystemExit(problems[0].message)
    container = Container.create(settings)
    try:
        hasher = Argon2Passwords(
            time_cost=settings.argon2_time_cost,
            memory_cost_kib=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )
        staff, created = await container.customers.make_staff(
            email, name or email.split("@")[0], await asyncio.to_thread(hasher.hash, password)
        )
    finally:
        await container.close()
    action = "created" if created else "promoted (password unchanged)"
    print(f"staff {staff.email} {action}")


async def _housekeeping(settings: Settings, command: str) -> None:
    """Jobs for cron (or, later, the worker): safe to run at any time, and concurrently."""
    container = Container.create(settings)
    try:
        if command == "orders-expire":
            print(f"expired {await container.orders.expire_unpaid()} unpaid orders")
        else:
            print(f"deleted {await container.checkout.delete_expired_keys()} idempotency keys")
    finally:
        await container.close()


async def _partner_create(
    settings: Settings, name: str, persisted_only: bool, manifest: Path | None, tier: str
) -> None:
    from domain.partners import (
        NewPartner,
        PartnerExists,
        check_new_partner,
        display_prefix,
        hash_api_key,
        new_api_key,
    )
    from domain.persisted_queries import InvalidManifest

    try:
        operations = parse_manifest(await asyncio.to_thread(manifest.read_text)) if manifest else {}
    except (OSError, InvalidManifest) as error:
        raise SystemExit(f"manifest {manifest}: {error}") from None
    partner = NewPartner(name, persisted_only, tier, list(operations.values()))
    if problems := check_new_partner(partner, list(settings.partner_tiers)):
        raise SystemExit("; ".join(problems))
    db = create_database(settings.effective_database_url)
    key = new_api_key()
    try:
        created = await SqlPartnerRepository(db).create(
            partner, hash_api_key(key), display_prefix(key)
        )
    except PartnerExists:
        raise SystemExit(
            f"a partner named {name!r} exists; revoke it or pick another name"
        ) from None
    finally:
        await db.dispose()
    mode = "persisted-only" if created.persisted_only else "free-form and persisted"
    print(
        f"partner {created.name} (id {created.id}, tier {created.tier}, {mode}, "
        f"{len(created.operations)} manifest operations); its API key, shown only now:"
    )
    print(key)


async def _partner_manifest(settings: Settings, name: str, manifest: Path) -> None:
    from domain.persisted_queries import InvalidManifest

    try:
        operations = parse_manifest(await asyncio.to_thread(manifest.read_text))
    except (OSError, InvalidManifest) as error:
        raise SystemExit(f"manifest {manifest}: {error}") from None
    db = create_database(settings.effective_database_url)
    try:
        replaced = await SqlPartnerRepository(db).replace_operations(
            name, list(operations.values())
        )
    finally:
        await db.dispose()
    if not replaced:
        raise SystemExit(f"no active partner named {name!r}")
    print(
        f"{name} now has {len(operations)} manifest operations; running servers pick "
        f"them up within {settings.partner_refresh_seconds:g} s"
    )


async def _partner_revoke(settings: Settings, name: str) -> None:
    db = create_database(settings.effective_database_url)
    try:
        revoked = await SqlPartnerRepository(db).revoke(name)
    finally:
        await db.dispose()
    if not revoked:
        raise SystemExit(f"no active partner named {name!r}")
    print(
        f"revoked {name}; running servers refuse its key within "
        f"{settings.partner_refresh_seconds:g} s"
    )


def manifest_build(files: list[Path], output: Path | None) -> None:
    from domain.persisted_queries import manifest_json
    from resolvers.manifests import ManifestError, build_manifest

    try:
        operations = build_manifest(
            ((str(f), f.read_text()) for f in files), build_schema()._schema
        )
    except (OSError, ManifestError) as error:
        raise SystemExit(f"manifest not built: {error}") from None
    text = manifest_json(operations) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        print(f"wrote {len(operations)} operations to {output}")


async def _worker(settings: Settings) -> None:
    """The relay and the consumers until SIGTERM or SIGINT, then a clean stop."""
    if settings.redis_url is None:
        log.warning("REDIS_URL is unset: this worker's in-process Redis is its alone")
    container = Container.create(settings)
    worker = build_event_worker(container)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await worker.start()
        await stopping.wait()
    finally:
        await worker.stop()


async def _search_reindex(settings: Settings) -> None:
    container = Container.create(settings)
    try:
        started = time.perf_counter()
        count = await container.search.rebuild()
        elapsed = time.perf_counter() - started
        print(f"indexed {count} products ({container.search.engine}) in {elapsed:.1f}s")
    finally:
        await container.close()


def export_schema(output: Path) -> None:
    output.write_text(str(build_schema()).rstrip() + "\n")
    print(f"wrote {output}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="app.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    commands.add_parser("migrate", help="apply database migrations")
    seed = commands.add_parser("seed", help="seed a deterministic demo catalog")
    seed.add_argument("--products", type=int, default=500)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--if-empty", action="store_true", help="do nothing when products exist")
    staff = commands.add_parser("create-staff", help="create a staff member or promote a customer")
    staff.add_argument("--email", required=True)
    staff.add_argument("--password", required=True)
    staff.add_argument("--name", default="")
    commands.add_parser(
        "orders-expire", help="cancel unpaid orders past their reservation, releasing stock"
    )
    commands.add_parser("idempotency-cleanup", help="delete idempotency keys older than 24 h")
    partner = commands.add_parser("partner-create", help="create a partner and print its key")
    partner.add_argument("--name", required=True)
    partner.add_argument("--persisted-only", action="store_true")
    partner.add_argument("--manifest", type=Path, help="operation manifest (JSON)")
    partner.add_argument("--tier", default="standard", help="rate-limit tier")
    replace = commands.add_parser("partner-manifest", help="replace a partner's manifest")
    replace.add_argument("--name", required=True)
    replace.add_argument("--manifest", type=Path, required=True)
    revoke = commands.add_parser("partner-revoke", help="revoke a partner's key")
    revoke.add_argument("--name", required=True)
    manifest = commands.add_parser(
        "manifest-build", help="write an operation manifest for .graphql files"
    )
    manifest.add_argument("files", nargs="+", type=Path)
    manifest.add_argument("--output", type=Path, help="default: standard output")
    commands.add_parser("worker", help="relay outbox events and run the event consumers")
    commands.add_parser("search-reindex", help="rebuild the search index from the catalog")
    export = commands.add_parser("export-schema", help="write the SDL")
    export.add_argument("--output", type=Path, default=ROOT / "schema.graphql")
    args = parser.parse_args(argv)

    if args.command == "export-schema":
        export_schema(args.output)
        return
    if args.command == "manifest-build":
        manifest_build(args.files, args.output)
        return
    settings = Settings()
    configure_logging(settings)
    if args.command == "migrate":
        asyncio.run(_migrate(settings))
    elif args.command in ("orders-expire", "idempotency-cleanup"):
        asyncio.run(_housekeeping(settings, args.command))
    elif args.command == "create-staff":
        asyncio.run(_create_staff(settings, args.email, args.password, args.name))
    elif args.command == "partner-create":
        asyncio.run(
            _partner_create(settings, args.name, args.persisted_only, args.manifest, args.tier)
        )
    elif args.command == "partner-manifest":
        asyncio.run(_partner_manifest(settings, args.name, args.manifest))
    elif args.command == "partner-revoke":
        asyncio.run(_partner_revoke(settings, args.name))
    elif args.command == "seed":
        asyncio.run(_seed(settings, args.products, args.seed, args.if_empty))
    elif args.command == "worker":
        asyncio.run(_worker(settings))
    elif args.command == "search-reindex":
        asyncio.run(_search_reindex(settings))
    elif args.command == "serve":
        import uvicorn

        uvicorn.run(
            "app:app",
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=settings.log_level.lower(),
        )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
