"""One typed settings object, read from the environment (and an optional `.env`)."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EMBEDDED_DATABASE_URL = "sqlite+aiosqlite:///var/shop.db"
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
# What a checkout needs besides the charge (claim, placing, settling: a few statements),
# kept free inside the request's deadline.
GATEWAY_TIMEOUT_MARGIN_SECONDS = 2.0
PII_INDEX_KEY_MIN = 32  # characters: a 256-bit key in base64 has 43
METRICS_TOKEN_MIN = 16
_GRAPHQL_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")


class Settings(BaseSettings):
    # A refused value is named, never echoed: start-up errors reach logs, and the input
    # holds the secrets below.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", hide_input_in_errors=True)

    environment: Literal["development", "test", "production"] = "development"
    # Development falls back to the embedded SQLite file and in-process Redis;
    # production must name both explicitly (see the validator below). Every URL that can
    # carry a password, and every key, is a SecretStr: reprs, dumps and logs show
    # '**********'; the adapters read `.get_secret_value()` where they connect.
    database_url: SecretStr | None = None
    database_read_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    # REDIS_URL names a Redis Cluster: `redis+cluster://[user:pass@]host:port[,host:port]`
    # (`rediss+cluster://` for TLS) does, or REDIS_CLUSTER=true with a plain redis:// URL
    # naming any one node. The client finds the rest and follows MOVED/ASK.
    redis_cluster: bool = False
    database_pool_size: int = Field(default=10, ge=1)
    # The read replica (DATABASE_READ_URL, a PostgreSQL streaming standby) takes reads
    # that may lag while it is no more than DATABASE_READ_MAX_LAG_SECONDS behind; a probe
    # every DATABASE_READ_PROBE_SECONDS decides, and a replica that does not connect or
    # answer within DATABASE_READ_TIMEOUT_SECONDS is skipped. A lag-tolerant read is thus
    # at most MAX_LAG + PROBE + TIMEOUT seconds stale (README "Read replica").
    database_read_max_lag_seconds: float = Field(default=2.0, gt=0, le=3600)
    database_read_probe_seconds: float = Field(default=1.0, gt=0, le=60)
    database_read_timeout_seconds: float = Field(default=1.0, gt=0, le=30)

    host: str = "127.0.0.1"
    port: int = 8000
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: a comma list of
    # addresses or CIDR networks ("*" for any). Empty: nobody's, the client address is
    # the TCP peer's, so rotating the header buys no new rate-limit bucket.
    forwarded_allow_ips: str = ""
    log_level: str = "INFO"
    # `json`: one JSON object per line (production's default); `text`: the plain lines
    # `make run` prints (the default elsewhere).
    log_format: Literal["json", "text"] | None = None
    # One log line per request (ids, operation, status, duration, statements, cost):
    # on by default where logs are JSON.
    log_requests: bool | None = None

    # Metrics (Prometheus). On when either is set: METRICS_PORT serves /metrics on its
    # own port (from `serve`'s parent process, or the worker), METRICS_TOKEN on the app
    # behind `Authorization: Bearer <token>`. Both unset: no metric exists at all.
    metrics_port: int | None = Field(default=None, ge=1, le=65_535)
    metrics_host: str = "127.0.0.1"
    metrics_token: SecretStr | None = None
    # Operation names that become `operation` label values even when sent as free-form
    # documents (trusted manifests' names always do); any other name is `anonymous`.
    metrics_operation_names: list[str] = Field(default_factory=list, max_length=500)
    # How often the DB pool (every process) and the event gauges (the worker) are sampled.
    metrics_sample_seconds: float = Field(default=15.0, gt=0)

    currency_code: str = Field(default="USD", min_length=3, max_length=3)
    cache_ttl_seconds: int = Field(default=300, ge=1)
    # Part of every cache key: change it when a cached record changes shape.
    cache_namespace: str = "catalog-v2"
    # Every Redis command's deadline (connect, write, read); the event worker's client
    # waits EVENT_CONSUMER_BLOCK_MS longer, for its blocking reads.
    redis_timeout_seconds: float = Field(default=0.25, gt=0)
    # After a Redis failure the cache, the rate limiter, the persisted-query store and
    # the search cache stop asking Redis this long, so an outage costs one timeout per
    # window, not one per request.
    redis_retry_after_seconds: float = Field(default=5.0, ge=0)
    # A pooled connection idle this long is PINGed before its next command (0: never).
    redis_health_check_seconds: int = Field(default=10, ge=0)

    # Customers and sessions.
    access_token_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    login_failures_per_email: int = Field(default=5, ge=1)
    login_failures_per_client: int = Field(default=20, ge=1)
    login_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Mailed single-use tokens. customerRecover requests count against the login limits
    # above (per email and per client address, in their own counters).
    password_reset_ttl_seconds: int = Field(default=3600, ge=60)
    email_verification_ttl_seconds: int = Field(default=3 * 24 * 3600, ge=60)
    # argon2id costs: argon2-cffi's defaults; tests lower them to stay fast.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_cost_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # Carts: integer minor units of CURRENCY_CODE; tax rates in basis points (2000 = 20%)
    # per ISO country, applied to subtotal plus shipping; unlisted countries pay none.
    cart_ttl_seconds: int = Field(default=30 * 24 * 3600, ge=60)
    shipping_flat_rate: int = Field(default=599, ge=0)
    free_shipping_threshold: int = Field(default=5_000, ge=0)
    # The built-in "rest of world" shipping zone: every country in no staff zone ships by
    # the two settings above ("Standard"). Off: such countries get SHIPPING_NOT_AVAILABLE.
    shipping_default_zone: bool = True
    tax_rates: dict[str, int] = Field(
        default_factory=lambda: {"US": 0, "CA": 500, "GB": 2000, "DE": 1900, "FR": 2000}
    )

    # Checkout and payments.
    payment_gateway: Literal["test", "stripe"] | None = None
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None  # a local fake in tests; Stripe's own API when unset
    # The charge's budget inside the request's: past it the outcome is unknown and the
    # order stays PENDING_PAYMENT (PAYMENT_PENDING), instead of the request timing out.
    gateway_timeout_seconds: float = Field(default=6.0, gt=0)
    # Comma-separated Fernet keys: the first encrypts, all decrypt (rotate by prepending).
    pii_encryption_keys: SecretStr | None = None
    # Keys the blind index of customer emails (HMAC-SHA256 of the canonical address): at
    # least 32 characters; it cannot be rotated without re-indexing every email.
    pii_index_key: SecretStr | None = None
    data_dir: str = "var"  # development keeps its generated PII keys here
    # Order status tokens are HMAC-SHA256(this key, order id): at least 32 characters,
    # the same for every process (API and worker). Development generates one in DATA_DIR.
    order_status_token_key: SecretStr | None = None
    # Gift card codes are stored as HMAC-SHA256(this key, code): at least 32 characters,
    # the same for every process; changing it makes every issued card unknown.
    # Development generates one in DATA_DIR.
    gift_card_code_key: SecretStr | None = None
    # cartGiftCardCodesUpdate: failed code look-ups per client address per window.
    gift_card_failures_per_client: int = Field(default=10, ge=1)
    gift_card_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # Carts keep the automatic discounts in process this long (staff changes reach a
    # cart within it; checkout always reads them fresh). 0: read on every cart read.
    discount_cache_seconds: float = Field(default=10.0, ge=0)
    # orderByStatusToken: failed look-ups per client address per window.
    order_status_failures_per_client: int = Field(default=20, ge=1)
    order_status_failure_window_seconds: int = Field(default=15 * 60, ge=1)
    # The storefront's base URL: the confirmation mail links to
    # <STOREFRONT_URL>/orders/status?token=...; unset, it carries the token itself.
    storefront_url: str | None = None
    order_reservation_minutes: int = Field(default=30, ge=1)
    # orderReturnRequest: units can be returned this many days after their fulfilment.
    return_window_days: int = Field(default=30, ge=0, le=3650)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    checkout_lock_seconds: float = Field(default=30.0, gt=0)
    checkout_wait_seconds: float = Field(default=5.0, ge=0)

    max_page_size: int = Field(default=100, ge=1)
    max_query_depth: int = Field(default=15, ge=1)
    max_query_aliases: int = Field(default=30, ge=0)
    max_query_tokens: int = Field(default=10_000, ge=1)
    max_query_cost: int = Field(default=1_000, ge=1)
    # A `query` longer than this (UTF-8 bytes) is refused unparsed, and never registered
    # as a persisted query: QUERY_TOO_LARGE, HTTP 413.
    max_query_bytes: int = Field(default=65_536, ge=1_024)
    # Parsed and validated documents kept per worker (estimated AST bytes, not entries).
    document_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=1_048_576)
    rate_limit_capacity: float = Field(default=1_000, gt=0)  # points per client bucket
    rate_limit_restore_rate: float = Field(default=50, gt=0)  # points per second
    # Each worker answers a client's takes from a local bucket while its unsent spend stays
    # within RATE_LIMIT_LOCAL_SHARE x capacity (the allowance) and sends that spend to
    # Redis every RATE_LIMIT_SYNC_MS; W workers admit at most (2W - 1) allowances more
    # than one exact bucket would (see persistence/redis/rate_limiter.py). 0: every
    # request asks Redis. At most RATE_LIMIT_LOCAL_CLIENTS local buckets per worker.
    rate_limit_local_share: float = Field(default=0.05, ge=0, le=0.25)
    rate_limit_sync_ms: int = Field(default=50, ge=1, le=1_000)
    rate_limit_local_clients: int = Field(default=10_000, ge=1, le=1_000_000)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)  # larger bodies get 413
    # Subscriptions (graphql-transport-ws on /graphql; see README "Subscriptions").
    # Operations one connection may run at once; one more is SUBSCRIPTION_LIMIT_REACHED.
    max_subscriptions_per_connection: int = Field(default=20, ge=1, le=1_000)
    # Open connections per client address, and per partner key, in each process;
    # one more is closed with 4429.
    subscription_connections_per_client: int = Field(default=20, ge=1, le=100_000)
    # Undelivered events a subscription may hold; one more drops it as a slow
    # consumer (close 4008).
    subscription_queue_size: int = Field(default=32, ge=1, le=10_000)
    # connection_init must arrive this soon after the handshake (else close 4408).
    subscription_init_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # The server pings this often; no pong (or any message) within the timeout: 4408.
    subscription_ping_seconds: float = Field(default=30.0, gt=0, le=3_600)
    subscription_pong_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # Any one client string (variable or literal) past this is BAD_USER_INPUT; fields
    # keep their own tighter limits. Must stay above the longest legitimate field (5,000).
    max_input_string_length: int = Field(default=10_000, ge=5_000)
    graphql_batch_max: int = Field(default=0, ge=0, le=10)  # array bodies: 0 = refused
    introspection: bool | None = None  # on outside production unless set
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    public_cache_max_age: int = Field(default=60, ge=0)  # public catalog GETs
    # Whole answers of anonymous persisted catalog GETs, in process (up to
    # `response_cache_local_bytes`; 0: Redis only) then in Redis, for at most the TTL;
    # purged by the catalog events. An answer over `response_cache_max_entry_bytes` is
    # never kept.
    response_cache_enabled: bool = True
    response_cache_ttl_seconds: int = Field(default=300, ge=1, le=86_400)
    response_cache_local_bytes: int = Field(default=32 * 1024 * 1024, ge=0)
    response_cache_max_entry_bytes: int = Field(default=256 * 1024, ge=1_024)
    cors_allow_origins: list[str] = Field(default_factory=list)  # JSON list; [] = no CORS
    graphiql: bool | None = None
    # Persisted queries. APQ documents live in Redis for `apq_ttl_seconds` (a client
    # re-registers after a miss) with an in-process LRU of `apq_lru_bytes` of document
    # text in front.
    apq_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    apq_lru_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    # Public manifests (first-party apps), loaded at start: JSON list of file paths.
    manifest_files: list[str] = Field(default_factory=list)
    # The public endpoint runs only operations from `manifest_files` (no free-form
    # queries, no APQ registration); partners follow their own flag.
    persisted_queries_only: bool = False
    partner_refresh_seconds: float = Field(default=30.0, gt=0)
    # Rate-limit tiers for partners: name -> [capacity, restore rate per second].
    partner_tiers: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {
            "standard": (5_000.0, 250.0),
            "premium": (20_000.0, 1_000.0),
        }
    )
    # Adds an `X-SQL-Statements` response header; handy for budgets and the benchmark.
    expose_statement_count: bool | None = None

    # Search on Elasticsearch when set (else PostgreSQL); reads and writes go through the
    # alias `elasticsearch_index`. A failed or slow search is answered by PostgreSQL, and
    # Elasticsearch is skipped for `search_fallback_retry_seconds` after a failure.
    elasticsearch_url: SecretStr | None = None
    elasticsearch_index: str = "products"
    elasticsearch_timeout_seconds: float = Field(default=0.5, gt=0)
    search_fallback_retry_seconds: float = Field(default=10.0, ge=0)
    # Search answers (ids, total, facets) kept in Redis this long; any re-index ends
    # them at once. 0 turns the cache off.
    search_cache_ttl_seconds: int = Field(default=60, ge=0)
    # Events: the outbox relay and the stream consumers (see README "Events").
    event_stream_max_length: int = Field(default=100_000, ge=100)  # per stream, approximate
    event_relay_batch_size: int = Field(default=100, ge=1)
    event_relay_poll_seconds: float = Field(default=0.5, gt=0)
    event_consumer_block_ms: int = Field(default=1_000, ge=1)
    event_claim_idle_ms: int = Field(default=30_000, ge=1)  # then a pending message is retaken
    event_max_deliveries: int = Field(default=5, ge=1)  # failures before the dead-letter stream
    event_done_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)  # dedupe memory
    # `outbox-cleanup` deletes published outbox rows older than this.
    outbox_retention_hours: int = Field(default=7 * 24, ge=1)
    # The worker runs orders-expire, idempotency-cleanup and outbox-cleanup this often.
    housekeeping_every_seconds: float = Field(default=60.0, gt=0)
    # The worker asks the gateway about orders still PENDING_PAYMENT or
    # PAYMENT_ACTION_REQUIRED this long after they were placed (Stripe's search lags by
    # up to a minute), every PAYMENT_RECONCILE_EVERY_SECONDS, at most a batch per run.
    payment_reconcile_grace_seconds: float = Field(default=300.0, ge=0)
    payment_reconcile_every_seconds: float = Field(default=60.0, gt=0)
    payment_reconcile_batch_size: int = Field(default=100, ge=1, le=10_000)
    # smtp://[user:pass@]host:port; unset: notifications are recorded, not sent.
    smtp_url: SecretStr | None = None
    mail_from: str = "shop@localhost"
    low_stock_threshold: int = Field(default=5, ge=0)
    # Partner webhooks (docs/webhooks.md). A failed delivery is retried after
    # WEBHOOK_RETRY_FIRST_SECONDS, doubling up to WEBHOOK_RETRY_MAX_SECONDS (with jitter),
    # for WEBHOOK_RETRY_WINDOW_SECONDS; a webhook whose every attempt failed for
    # WEBHOOK_DISABLE_AFTER_DAYS is disabled, with a notification for staff.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=20, ge=1, le=1_000)
    webhook_per_webhook_concurrency: int = Field(default=2, ge=1, le=100)
    webhook_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    webhook_retry_first_seconds: float = Field(default=30.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_window_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_disable_after_days: float = Field(default=5.0, gt=0)
    # Housekeeping deletes succeeded and failed deliveries older than this.
    webhook_delivery_retention_days: int = Field(default=30, ge=1)
    # Webhooks may reach private, loopback and link-local addresses: for tests and a
    # developer's machine only; production refuses to start with it.
    webhook_allow_private_addresses: bool = False
    # The relay and consumers inside the server process: on by default only when Redis
    # is in-process (fakeredis), where no other process could reach the streams.
    run_worker_in_process: bool | None = None

    # Traces (OpenTelemetry), under the SDK's standard names. Off ("none") unless an
    # exporter is named: then nothing is instrumented and no request pays for it.
    # "otlp" is OTLP over HTTP/protobuf; OTEL_EXPORTER_OTLP_ENDPOINT (default
    # http://localhost:4318), OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_* and
    # OTEL_RESOURCE_ATTRIBUTES are read by the SDK itself.
    otel_traces_exporter: Literal["none", "otlp", "console"] = "none"
    otel_service_name: str = Field(default="commerce-api", min_length=1, max_length=200)
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = "parentbased_always_on"
    # The ratio of the *traceidratio samplers (1.0 when unset).
    otel_traces_sampler_arg: float | None = Field(default=None, ge=0, le=1)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        for entry in _comma_list(value):
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("otel_traces_exporter", "otel_traces_sampler", mode="before")
    @classmethod
    def _otel_names_ignore_case(cls, value: object) -> object:
        # The SDK reads these case-insensitively; so do we ("OTLP", " none ").
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _redis_cluster_url_is_usable(self) -> Settings:
        url = revealed(self.redis_url)
        if url is None:
            if self.redis_cluster:
                raise ValueError("REDIS_CLUSTER=true needs REDIS_URL (a node of the cluster)")
            return self
        if self.redis_cluster or url.split("://", 1)[0] in CLUSTER_SCHEMES:
            redis_cluster_nodes(url)  # raises, naming what is wrong (never the password)
        return self

    @property
    def redis_cluster_mode(self) -> bool:
        url = revealed(self.redis_url)
        return url is not None and (self.redis_cluster or url.split("://", 1)[0] in CLUSTER_SCHEMES)

    @field_validator("pii_index_key")
    @classmethod
    def _index_key_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < PII_INDEX_KEY_MIN:
            raise ValueError(f"PII_INDEX_KEY must have at least {PII_INDEX_KEY_MIN} characters")
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < METRICS_TOKEN_MIN:
            raise ValueError(f"METRICS_TOKEN must have at least {METRICS_TOKEN_MIN} characters")
        return value

    @field_validator("metrics_operation_names")
    @classmethod
    def _operation_names_are_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not _GRAPHQL_NAME.fullmatch(name):
                raise ValueError(f"{name[:40]!r} is not a GraphQL operation name")
        return value

    @model_validator(mode="after")
    def _metrics_port_is_its_own(self) -> Settings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT must differ from PORT")
        return self

    @property
    def metrics_enabled(self) -> bool:
        return self.metrics_port is not None or self.metrics_token is not None

    @property
    def effective_log_format(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def requests_logged(self) -> bool:
        if self.log_requests is not None:
            return self.log_requests
        return self.effective_log_format == "json"

    @property
    def trusted_proxies(self) -> list[str]:
        return _comma_list(self.forwarded_allow_ips)

    @model_validator(mode="after")
    def _gateway_fits_in_the_request(self) -> Settings:
        needed = self.gateway_timeout_seconds + GATEWAY_TIMEOUT_MARGIN_SECONDS
        if needed >= self.request_timeout_seconds:
            raise ValueError(
                f"GATEWAY_TIMEOUT_SECONDS ({self.gateway_timeout_seconds:g}) plus "
                f"{GATEWAY_TIMEOUT_MARGIN_SECONDS:g} s for the rest of a checkout must stay "
                f"under REQUEST_TIMEOUT_SECONDS ({self.request_timeout_seconds:g}): lower the "
                "first or raise the second"
            )
        return self

    @model_validator(mode="after")
    def _replica_needs_postgres(self) -> Settings:
        read_url = revealed(self.database_read_url)
        if read_url:
            urls = (read_url, revealed(self.database_url) or EMBEDDED_DATABASE_URL)
            if not all(url.startswith("postgresql") for url in urls):
                raise ValueError(
                    "DATABASE_READ_URL is a PostgreSQL replica of DATABASE_URL: both must be "
                    "postgresql+asyncpg:// URLs"
                )
        return self

    @property
    def replica_staleness_bound_seconds(self) -> float:
        """How old a lag-tolerant read can be while the replica serves it."""
        return (
            self.database_read_max_lag_seconds
            + self.database_read_probe_seconds
            + self.database_read_timeout_seconds
        )

    @model_validator(mode="after")
    def _production_needs_real_services(self) -> Settings:
        if self.environment == "production":
            missing = [
                name
                for name, value in (
                    ("DATABASE_URL", self.database_url),
                    ("REDIS_URL", self.redis_url),
                )
                if not value
            ]
            for name, value in (
                ("PAYMENT_GATEWAY", self.payment_gateway),
                ("PII_ENCRYPTION_KEYS", self.pii_encryption_keys),
                ("PII_INDEX_KEY", self.pii_index_key),
                ("ORDER_STATUS_TOKEN_KEY", self.order_status_token_key),
                ("GIFT_CARD_CODE_KEY", self.gift_card_code_key),
            ):
                if not value:
                    missing.append(name)
            if self.payment_gateway == "stripe":
                missing += [
                    name
                    for name, value in (
                        ("STRIPE_API_KEY", self.stripe_api_key),
                        ("STRIPE_WEBHOOK_SECRET", self.stripe_webhook_secret),
                    )
                    if not value
                ]
            if missing:
                raise ValueError(f"production requires {', '.join(missing)} to be set")
            if self.webhook_allow_private_addresses:
                raise ValueError(
                    "WEBHOOK_ALLOW_PRIVATE_ADDRESSES is for tests and development: production "
                    "webhooks reach public addresses only"
                )
        return self

    # After the production check, which names every missing variable at once.
    @model_validator(mode="after")
    def _stripe_needs_its_key(self) -> Settings:
        if self.payment_gateway == "stripe" and not self.stripe_api_key:
            raise ValueError("PAYMENT_GATEWAY=stripe needs STRIPE_API_KEY")
        return self

    @property
    def effective_payment_gateway(self) -> str:
        return self.payment_gateway or "test"

    @property
    def effective_database_url(self) -> str:
        return revealed(self.database_url) or EMBEDDED_DATABASE_URL

    @property
    def graphiql_enabled(self) -> bool:
        if self.graphiql is not None:
            return self.graphiql
        return self.environment == "development"

    @property
    def introspection_enabled(self) -> bool:
        if self.introspection is not None:
            return self.introspection
        return self.environment != "production"

    @property
    def statement_count_exposed(self) -> bool:
        if self.expose_statement_count is not None:
            return self.expose_statement_count
        return self.environment != "production"

    @property
    def worker_in_process(self) -> bool:
        if self.run_worker_in_process is not None:
            return self.run_worker_in_process
        return self.redis_url is None


@dataclass(frozen=True, slots=True)
class RedisClusterNodes:
    """Where a Redis Cluster client starts: the nodes REDIS_URL names, and how to talk
    to them (the client asks any of them for the rest of the cluster)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def redis_cluster_nodes(url: str) -> RedisClusterNodes:
    """`redis+cluster://[user:pass@]host:port[,host:port...]`, or a plain `redis://` /
    `rediss://` URL of one node (REDIS_CLUSTER=true). A cluster has one database: a
    path other than `/` or `/0` is refused rather than ignored."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in (*CLUSTER_SCHEMES, "redis", "rediss"):
        raise ValueError("REDIS_URL for a cluster must start with redis+cluster:// or redis://")
    tls = scheme.startswith("rediss")
    authority, _, path = rest.partition("/")
    path, _, _query = path.partition("?")
    if path not in ("", "0"):
        raise ValueError("a Redis Cluster has only database 0: REDIS_URL may not name another")
    credentials, at, hosts = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes: list[tuple[str, int]] = []
    for entry in hosts.split(","):
        host, colon, port = entry.strip().rpartition(":")
        host = host.strip("[]")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("REDIS_URL for a cluster must list nodes as host:port[,host:port]")
        nodes.append((host, int(port)))
    return RedisClusterNodes(tuple(nodes), username, password, tls)


def _comma_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


def revealed(secret: SecretStr | None) -> str | None:
    """The value of an optional secret, for the one place that connects with it."""
    return None if secret is None else secret.get_secret_value()
