"""SQLAlchemy Core tables: the one description of the schema, for queries and migrations."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

from domain.orders import CART_HOLDING_STATUSES

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BIGINT identities on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
# Python None as SQL NULL (Json writes it as the JSON value null).
NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


def _timestamps() -> list[Column[object]]:
    return [
        Column(
            "created_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=text("CURRENT_TIMESTAMP"),
        ),
        Column(
            "updated_at",
            DateTime(timezone=True),
            nullable=False,
            server_default=text("CURRENT_TIMESTAMP"),
        ),
    ]


categories = Table(
    "categories",
    metadata,
    _id(),
    Column("parent_id", Id, ForeignKey("categories.id", ondelete="RESTRICT"), nullable=True),
    Column("slug", String(120), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("path", String(500), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
    Index("ix_categories_parent_id", "parent_id"),
    Index("ix_categories_path", "path"),
)

products = Table(
    "products",
    metadata,
    _id(),
    Column("slug", String(200), nullable=False, unique=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("brand", String(120), nullable=False, server_default=""),
    Column("category_id", Id, ForeignKey("categories.id", ondelete="SET NULL"), nullable=True),
    Column("status", String(16), nullable=False, server_default="draft"),
    Column("attributes", Json, nullable=False),
    Column("price_min", BigInteger, nullable=False, server_default="0"),
    Column("price_max", BigInteger, nullable=False, server_default="0"),
    Column("currency_code", String(3), nullable=False),
    *_timestamps(),
    CheckConstraint("status IN ('draft', 'active', 'archived')", name="status"),
    CheckConstraint("price_min >= 0 AND price_max >= price_min", name="price_range"),
    Index("ix_products_category_id", "category_id"),
    Index("ix_products_brand", "brand"),
    Index("ix_products_title_id", "title", "id"),
    Index("ix_products_price_min_id", "price_min", "id"),
    Index("ix_products_created_at_id", "created_at", "id"),
)

product_images = Table(
    "product_images",
    metadata,
    _id(),
    Column("product_id", Id, ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(1000), nullable=False),
    Column("alt", String(300), nullable=False, server_default=""),
    Column("position", Integer, nullable=False),
    UniqueConstraint("product_id", "position", name="uq_product_images_product_id_position"),
)

product_variants = Table(
    "product_variants",
    metadata,
    _id(),
    Column("product_id", Id, ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("sku", String(64), nullable=False, unique=True),
    Column("title", String(300), nullable=False),
    Column("options", Json, nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("compare_at_price", BigInteger, nullable=True),
    Column("currency_code", String(3), nullable=False),
    Column("position", Integer, nullable=False, server_default="0"),
    *_timestamps(),
    CheckConstraint("price >= 0", name="price_non_negative"),
    CheckConstraint(
        "compare_at_price IS NULL OR compare_at_price >= 0", name="compare_at_non_negative"
    ),
    Index("ix_product_variants_product_id", "product_id", "position"),
    Index("ix_product_variants_price", "price", "product_id"),
)

inventory_levels = Table(
    "inventory_levels",
    metadata,
    Column(
        "variant_id", Id, ForeignKey("product_variants.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("available", Integer, nullable=False, server_default="0"),
    Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    # The last line of defence against overselling: no code path can go below zero.
    CheckConstraint("available >= 0", name="available_non_negative"),
)

customers = Table(
    "customers",
    metadata,
    _id(),
    # Fernet (persistence/pii.py), like orders' emails; found by `email_index`.
    Column("email_encrypted", Text, nullable=False),
    # HMAC-SHA256 (PII_INDEX_KEY) of the canonical email, hex: "Ann@x.com", "ann@x.com"
    # and the fullwidth spelling are one customer.
    Column("email_index", String(64), nullable=False),
    Column("display_name_encrypted", Text, nullable=False),
    # argon2id; null for customers who never set a password (seeded reviewers).
    Column("password_hash", String(255), nullable=True),
    Column("is_staff", Boolean, nullable=False, server_default="0"),
    *_timestamps(),
    # When the current email was proven (a mailed token came back); null: not yet.
    Column("email_verified_at", DateTime(timezone=True), nullable=True),
)
Index("uq_customers_email_index", customers.c.email_index, unique=True)

# A customer's address book. One Fernet ciphertext of the whole address (JSON) per row,
# like orders' addresses: `pii-rotate` re-encrypts `address_encrypted`. The partial unique
# index keeps at most one default per customer; writes lock the customer row first, so
# the 50-address limit holds under concurrency.
customer_addresses = Table(
    "customer_addresses",
    metadata,
    _id(),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("address_encrypted", Text, nullable=False),
    Column("is_default", Boolean, nullable=False, server_default="0"),
    *_timestamps(),
    Index("ix_customer_addresses_customer_id", "customer_id", "id"),
    Index(
        "uq_customer_addresses_default",
        "customer_id",
        unique=True,
        postgresql_where=text("is_default"),
        sqlite_where=text("is_default"),
    ),
)

# Single-use tokens mailed to a customer (password resets, email verifications): only
# the token's SHA-256 is kept. A verification holds the address it proves (Fernet).
account_tokens = Table(
    "account_tokens",
    metadata,
    _id(),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("email_encrypted", Text, nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    CheckConstraint("purpose IN ('password_reset', 'email_verification')", name="purpose"),
    Index("ix_account_tokens_customer_purpose", "customer_id", "purpose"),
)

reviews = Table(
    "reviews",
    metadata,
    _id(),
    Column("product_id", Id, ForeignKey("products.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("rating", SmallInteger, nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
    UniqueConstraint("product_id", "customer_id", name="uq_reviews_product_id_customer_id"),
    Index("ix_reviews_product_newest", "product_id", "created_at", "id"),
    Index("ix_reviews_customer_newest", "customer_id", "created_at", "id"),
)

product_rating_summaries = Table(
    "product_rating_summaries",
    metadata,
    Column("product_id", Id, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("rating_count", Integer, nullable=False, server_default="0"),
    Column("rating_sum", Integer, nullable=False, server_default="0"),
    Column("rating_average", Float, nullable=False, server_default="0"),
    CheckConstraint("rating_count >= 0 AND rating_sum >= 0", name="non_negative"),
    Index("ix_product_rating_summaries_average", "rating_average", "product_id"),
)

# -- orders, idempotency, outbox ---------------------------------------------------------

# The statuses in which an order holds its cart (domain.orders.CART_HOLDING_STATUSES).
ORDER_HOLDS_CART = text(
    "status IN ({})".format(", ".join(f"'{s.value}'" for s in CART_HOLDING_STATUSES))
)

orders = Table(
    "orders",
    metadata,
    _id(),
    # The id clients see: random, so orders can be neither guessed nor counted.
    Column("public_id", String(32), nullable=False, unique=True),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="SET NULL"), nullable=True),
    Column("cart_id", String(64), nullable=False),
    Column("status", String(32), nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("shipping", BigInteger, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    # Fernet ciphertexts (PII_ENCRYPTION_KEYS): the database never holds them in clear.
    Column("email_encrypted", Text, nullable=False),
    Column("shipping_address_encrypted", Text, nullable=False),
    Column("payment_method", String(255), nullable=False),
    Column("payment_id", String(255), nullable=True),
    Column("card_brand", String(32), nullable=True),
    Column("card_last4", String(4), nullable=True),
    Column("decline_code", String(64), nullable=True),
    Column("refund_id", String(255), nullable=True),
    Column("reservation_expires_at", DateTime(timezone=True), nullable=False),
    # SHA-256 of the order's status token (domain.order_status): the token itself is
    # never stored. Null for orders placed before tokens existed.
    Column("status_token_hash", String(64), nullable=True),
    Column("cancel_reason", String(500), nullable=True),  # set when cancelled
    # The shipping method charged, as it was then (null for orders before 0013).
    Column("shipping_method_title", String(100), nullable=True),
    Column("shipping_method_handle", String(64), nullable=True),
    # subtotal - discount_total + shipping + tax = total; total - gift_card_total is what
    # the card gateway charges (0013 and earlier: no discounts, no gift cards).
    Column("discount_total", BigInteger, nullable=False, server_default=text("0")),
    Column("gift_card_total", BigInteger, nullable=False, server_default=text("0")),
    # Set once, when the gateway reports a dispute of the payment (charge.dispute.created).
    Column("disputed_at", DateTime(timezone=True), nullable=True),
    Column("dispute_reason", String(64), nullable=True),
    Column("dispute_amount", BigInteger, nullable=True),
    # While PAYMENT_ACTION_REQUIRED: the gateway's client secret for the customer's step
    # (Fernet, like the email; cleared by the transition out) and its kind.
    Column("payment_action_secret_encrypted", Text, nullable=True),
    Column("payment_action_type", String(32), nullable=True),
    # When the reconciler last asked the gateway about this unsettled order.
    Column("payment_checked_at", DateTime(timezone=True), nullable=True),
    # What refunds took or hold (PENDING ones included): the conditional guard that two
    # refunds together never exceed the total.
    Column("refunded_total", BigInteger, nullable=False, server_default=text("0")),
    *_timestamps(),
    CheckConstraint(
        "status IN ('PENDING_PAYMENT', 'PAYMENT_ACTION_REQUIRED', 'PAID', 'FULFILLED', "
        "'PAYMENT_FAILED', 'CANCELLED', 'REFUNDED')",
        name="status",
    ),
    CheckConstraint("subtotal >= 0 AND shipping >= 0 AND tax >= 0 AND total >= 0", name="amounts"),
    CheckConstraint(
        "discount_total >= 0 AND gift_card_total >= 0 AND gift_card_total <= total",
        name="paid_parts",
    ),
    CheckConstraint("refunded_total >= 0 AND refunded_total <= total", name="refunded"),
    Index("ix_orders_customer_newest", "customer_id", "created_at", "id"),
    Index("ix_orders_status_expiry", "status", "reservation_expires_at"),
    Index("ix_orders_payment_id", "payment_id"),
    Index("uq_orders_status_token_hash", "status_token_hash", unique=True),
    # A cart becomes at most one live order: checkout inserts with ON CONFLICT against
    # this index, so concurrent checkouts of one cart serialise on it. A failed payment or
    # a cancelled order leaves the index, freeing the cart for another attempt.
    Index(
        "uq_orders_cart_holding",
        "cart_id",
        unique=True,
        postgresql_where=ORDER_HOLDS_CART,
        sqlite_where=ORDER_HOLDS_CART,
    ),
)

order_lines = Table(
    "order_lines",
    metadata,
    _id(),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("variant_id", Id, nullable=False),
    Column("product_id", Id, nullable=False),
    # Snapshots: what was bought at what price, whatever the catalog says later.
    Column("sku", String(64), nullable=False),
    Column("title", String(600), nullable=False),
    Column("unit_price", BigInteger, nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0 AND unit_price >= 0", name="positive"),
    Index("ix_order_lines_order_id", "order_id"),
)

# One row per status an order entered, written in the transaction that moved it.
order_status_changes = Table(
    "order_status_changes",
    metadata,
    _id(),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(32), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    Index("ix_order_status_changes_order_id", "order_id", "id"),
)

# A shipment: some units of some lines of one order, with optional tracking.
fulfillments = Table(
    "fulfillments",
    metadata,
    _id(),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("tracking_company", String(255), nullable=True),
    Column("tracking_number", String(255), nullable=True),
    Column("tracking_url", String(2048), nullable=True),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    Index("ix_fulfillments_order_id", "order_id", "id"),
)

fulfillment_lines = Table(
    "fulfillment_lines",
    metadata,
    _id(),
    Column("fulfillment_id", Id, ForeignKey("fulfillments.id", ondelete="CASCADE"), nullable=False),
    Column("order_line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="positive"),
    Index("ix_fulfillment_lines_fulfillment_id", "fulfillment_id"),
    Index("ix_fulfillment_lines_order_line_id", "order_line_id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    _id(),
    Column("scope", String(100), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="SET NULL"), nullable=True),
    Column("result", Json, nullable=True),  # set when the request is done
    Column("locked_until", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("topic", String(64), nullable=False),
    Column("payload", Json, nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    Column("published_at", DateTime(timezone=True), nullable=True),
    # The W3C trace context of the traced request that wrote it ({"traceparent": ...,
    # "tracestate": ...}), or NULL: consumers link their spans to that trace.
    Column("trace_context", NullableJson, nullable=True),
    Index("ix_outbox_unpublished", "published_at", "id"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(255), primary_key=True),
    # What the event did: "settled: paid", "ignored: amount mismatch", ... (for support).
    Column("outcome", String(100), nullable=True),
    Column(
        "received_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
)

# -- partners ---------------------------------------------------------------------------

partners = Table(
    "partners",
    metadata,
    _id(),
    Column("name", String(120), nullable=False, unique=True),
    # SHA-256 of the API key: keys are 256 random bits, so a fast hash is enough.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_prefix", String(16), nullable=False),  # shown in logs and listings
    Column("persisted_only", Boolean, nullable=False, server_default=text("false")),
    Column("tier", String(32), nullable=False, server_default=text("'standard'")),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

partner_operations = Table(
    "partner_operations",
    metadata,
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("operation_id", String(64), primary_key=True),  # sha256 of the body, hex
    Column("name", String(200), nullable=False),
    Column("body", Text, nullable=False),
)

# -- partner webhooks -------------------------------------------------------------------

partner_webhooks = Table(
    "partner_webhooks",
    metadata,
    _id(),
    Column("partner_id", Id, ForeignKey("partners.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("events", Json, nullable=False),  # partner event names (domain/webhooks.py)
    # Fernet (PII_ENCRYPTION_KEYS): the sender needs the secret itself to sign.
    Column("secret_encrypted", Text, nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    # Since when every attempt failed (NULL after a success): N days of it disables.
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("disabled_at", DateTime(timezone=True), nullable=True),
    Column("disabled_reason", String(200), nullable=True),
    Index("ix_partner_webhooks_partner_id", "partner_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    Column("webhook_id", Id, ForeignKey("partner_webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(100), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the JSON sent, byte for byte on every attempt
    Column("status", String(16), nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # no retry after it
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_response_status", Integer, nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("last_latency_ms", Integer, nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_webhook_id_event_id"),
    CheckConstraint("status IN ('pending', 'succeeded', 'failed')", name="status"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook_id", "webhook_id", "id"),  # a webhook's log
)

# -- notifications ----------------------------------------------------------------------

notifications = Table(
    "notifications",
    metadata,
    _id(),
    Column("kind", String(32), nullable=False),
    # What it is about (an order's public id, `variant:<id>`): unique per kind, so a
    # repeated event can never send a second one.
    Column("key", String(100), nullable=False),
    Column("recipient_encrypted", Text, nullable=True),  # Fernet, like orders' emails
    Column("subject", String(300), nullable=False),
    # Rows before migration 0011 kept their body in clear; every body since is Fernet
    # (a reset mail carries a token), like the recipient.
    Column("body", Text, nullable=True),
    Column("body_encrypted", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("status IN ('pending', 'sent', 'recorded')", name="status"),
    UniqueConstraint("kind", "key", name="uq_notifications_kind_key"),
)

# -- search -----------------------------------------------------------------------------

# One row per active product, denormalised for the SQL search indexes (PostgreSQL and the
# embedded SQLite mode). On PostgreSQL `search_vector` holds the weighted tsvector (A title,
# B brand and category names, C description) and both GIN indexes are real; SQLite leaves
# the vector NULL and its two indexes are plain (migration 0005 makes them).
search_documents = Table(
    "search_documents",
    metadata,
    Column("product_id", Id, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True),
    Column("slug", String(200), nullable=False),
    Column("title", String(300), nullable=False),
    Column("brand", String(120), nullable=False),
    Column("description", Text, nullable=False),
    Column("category_slugs", Json, nullable=False),  # own category first, then ancestors
    Column("category_names", Json, nullable=False),
    Column("attributes", Json, nullable=False),  # [[name, value], ...]
    Column("price_min", BigInteger, nullable=False),
    Column("price_max", BigInteger, nullable=False),
    Column("in_stock", Boolean, nullable=False),
    Column("rating", Float, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Lower-cased title, brand and category names: trigram (typo) matching on PostgreSQL,
    # LIKE matching on SQLite.
    Column("search_text", Text, nullable=False),
    Column("search_vector", TSVECTOR().with_variant(Text(), "sqlite"), nullable=True),
    Index("ix_search_documents_search_vector", "search_vector", postgresql_using="gin"),
    Index(
        "ix_search_documents_search_text_trgm",
        "search_text",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    ),
)


# Shipping (domain/shipping.py): a zone is a set of countries holding methods. The
# primary key on the country is what keeps a country in at most one zone.
shipping_zones = Table(
    "shipping_zones",
    metadata,
    _id(),
    Column("name", String(100), nullable=False),
    *_timestamps(),
)

shipping_zone_countries = Table(
    "shipping_zone_countries",
    metadata,
    Column("country_code", String(2), primary_key=True),
    Column("zone_id", Id, ForeignKey("shipping_zones.id", ondelete="CASCADE"), nullable=False),
    Index("ix_shipping_zone_countries_zone_id", "zone_id"),
)

shipping_methods = Table(
    "shipping_methods",
    metadata,
    _id(),
    Column("zone_id", Id, ForeignKey("shipping_zones.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(100), nullable=False),
    Column("price", BigInteger, nullable=False),
    Column("min_subtotal", BigInteger, nullable=True),
    Column("max_subtotal", BigInteger, nullable=True),
    Column("min_delivery_days", SmallInteger, nullable=False),
    Column("max_delivery_days", SmallInteger, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    *_timestamps(),
    CheckConstraint("price >= 0", name="price"),
    CheckConstraint(
        "min_subtotal IS NULL OR max_subtotal IS NULL OR min_subtotal <= max_subtotal",
        name="subtotal_range",
    ),
    CheckConstraint(
        "min_delivery_days >= 0 AND min_delivery_days <= max_delivery_days", name="delivery_days"
    ),
    Index("ix_shipping_methods_zone_id", "zone_id", "id"),
)


gift_cards = Table(
    "gift_cards",
    metadata,
    _id(),
    # HMAC-SHA256 (GIFT_CARD_CODE_KEY) of the canonical code, hex; the code is never stored.
    Column("code_digest", String(64), nullable=False, unique=True),
    Column("last_characters", String(4), nullable=False),
    Column("initial_balance", BigInteger, nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("note", String(500), nullable=True),  # staff's, never shown to shoppers
    Column(
        "created_at",
        DateTime(timezone=True),
        server_default=text("CURRENT_TIMESTAMP"),
        nullable=False,
    ),
    CheckConstraint("initial_balance > 0", name="initial_balance_positive"),
    CheckConstraint("balance >= 0 AND balance <= initial_balance", name="balance_in_range"),
)


discounts = Table(
    "discounts",
    metadata,
    _id(),
    Column("title", String(200), nullable=False),
    # Canonical (domain.discounts.canonical_code); null for an automatic discount.
    Column("code", String(64), nullable=True, unique=True),
    Column("value_type", String(20), nullable=False),
    # Basis points for a percentage, minor units for a fixed amount, 0 for free shipping.
    Column("value", BigInteger, nullable=False),
    Column("scope", String(20), nullable=False),
    Column("product_ids", Json, nullable=False),  # JSON arrays of ids, for the scope
    Column("category_ids", Json, nullable=False),
    Column("minimum_subtotal", BigInteger, nullable=True),
    Column("starts_at", DateTime(timezone=True), nullable=True),
    Column("ends_at", DateTime(timezone=True), nullable=True),
    Column("usage_limit", Integer, nullable=True),
    # Taken in the order transaction (conditional update, like stock), given back when
    # the order's payment fails or it is cancelled.
    Column("times_used", Integer, nullable=False, server_default=text("0")),
    Column("once_per_customer", Boolean, nullable=False, server_default=text("false")),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    *_timestamps(),
    CheckConstraint(
        "value_type IN ('PERCENTAGE', 'FIXED_AMOUNT', 'FREE_SHIPPING')", name="value_type"
    ),
    CheckConstraint("scope IN ('ORDER', 'PRODUCTS', 'CATEGORIES')", name="scope"),
    CheckConstraint(
        "value >= 0 AND times_used >= 0 AND (usage_limit IS NULL OR usage_limit > 0) "
        "AND (minimum_subtotal IS NULL OR minimum_subtotal >= 0)",
        name="amounts",
    ),
    CheckConstraint("starts_at IS NULL OR ends_at IS NULL OR starts_at < ends_at", name="dates"),
)

# A once-per-customer discount used by a buyer ("customer:<id>", or the blind index of a
# guest's normalised email) on an order: the unique index is what keeps one buyer's
# concurrent checkouts to one use. Deleted when the use is given back.
discount_redemptions = Table(
    "discount_redemptions",
    metadata,
    _id(),
    Column("discount_id", Id, ForeignKey("discounts.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("buyer_key", String(80), nullable=False),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    UniqueConstraint("discount_id", "buyer_key", name="uq_discount_redemptions_discount_buyer"),
    Index("ix_discount_redemptions_order_id", "order_id"),
    Index("ix_discount_redemptions_buyer_key", "buyer_key"),
)

# What each discount took off each order line, or off shipping (order_line_id null),
# snapshotted when the order was placed. A free-shipping discount on a free method takes 0
# and is still recorded: the discounts an order counted are the ones named here.
order_discount_allocations = Table(
    "order_discount_allocations",
    metadata,
    _id(),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("order_line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=True),
    Column("discount_id", Id, ForeignKey("discounts.id", ondelete="SET NULL"), nullable=True),
    Column("title", String(200), nullable=False),
    Column("code", String(64), nullable=True),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount >= 0", name="amount"),
    Index("ix_order_discount_allocations_order_id", "order_id"),
)

# What each gift card paid of an order; credited_back_at is set once, in the transaction
# that fails or cancels the order and puts the amount back on the card.
order_gift_card_payments = Table(
    "order_gift_card_payments",
    metadata,
    _id(),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("gift_card_id", Id, ForeignKey("gift_cards.id"), nullable=False),
    Column("last_characters", String(4), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("credited_back_at", DateTime(timezone=True), nullable=True),
    CheckConstraint("amount > 0", name="positive"),
    UniqueConstraint("order_id", "gift_card_id", name="uq_order_gift_card_payments_card"),
    Index("ix_order_gift_card_payments_gift_card_id", "gift_card_id"),
)

# A refund of some units, the shipping or an amount of an order (domain/refunds.py): PENDING
# while the gateway is asked, then SUCCEEDED or FAILED. The key is the SHA-256 of the
# staff's idempotency key, unique per order; the fingerprint that of the request.
order_refunds = Table(
    "order_refunds",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", String(10), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("gift_card_amount", BigInteger, nullable=False),
    Column("card_amount", BigInteger, nullable=False),
    Column("shipping", Boolean, nullable=False),
    Column("reason", String(500), nullable=True),
    Column("restock", Boolean, nullable=False),
    Column("gateway_refund_id", String(255), nullable=True),
    Column(
        "created_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
    ),
    Column("settled_at", DateTime(timezone=True), nullable=True),
    # The gateway was asked and did not answer: a replay of the key asks it again.
    Column("outcome_unknown", Boolean, nullable=False, server_default=text("false")),
    CheckConstraint("status IN ('PENDING', 'SUCCEEDED', 'FAILED')", name="status"),
    CheckConstraint(
        "amount > 0 AND gift_card_amount >= 0 AND card_amount >= 0 "
        "AND gift_card_amount + card_amount = amount",
        name="amounts",
    ),
    UniqueConstraint("order_id", "idempotency_key", name="uq_order_refunds_order_key"),
)

order_refund_lines = Table(
    "order_refund_lines",
    metadata,
    _id(),
    Column("refund_id", Id, ForeignKey("order_refunds.id", ondelete="CASCADE"), nullable=False),
    Column("order_line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="positive"),
    Index("ix_order_refund_lines_refund_id", "refund_id"),
)

# What a refund put back on each gift card (gift cards are refunded first).
order_refund_gift_cards = Table(
    "order_refund_gift_cards",
    metadata,
    _id(),
    Column("refund_id", Id, ForeignKey("order_refunds.id", ondelete="CASCADE"), nullable=False),
    Column("gift_card_id", Id, ForeignKey("gift_cards.id"), nullable=False),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="positive"),
    Index("ix_order_refund_gift_cards_refund_id", "refund_id"),
)

# A shopper's return of fulfilled units: REQUESTED -> APPROVED -> RECEIVED, or DECLINED.
order_returns = Table(
    "order_returns",
    metadata,
    _id(),
    Column("public_id", String(32), nullable=False, unique=True),
    Column("order_id", Id, ForeignKey("orders.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(10), nullable=False),
    Column("reason", String(500), nullable=True),
    Column("decline_reason", String(500), nullable=True),
    Column("refund_id", Id, ForeignKey("order_refunds.id"), nullable=True),
    *_timestamps(),
    CheckConstraint("status IN ('REQUESTED', 'APPROVED', 'DECLINED', 'RECEIVED')", name="status"),
    Index("ix_order_returns_order_id", "order_id", "id"),
)

order_return_lines = Table(
    "order_return_lines",
    metadata,
    _id(),
    Column("return_id", Id, ForeignKey("order_returns.id", ondelete="CASCADE"), nullable=False),
    Column("order_line_id", Id, ForeignKey("order_lines.id", ondelete="CASCADE"), nullable=False),
    Column("quantity", Integer, nullable=False),
    CheckConstraint("quantity > 0", name="positive"),
    Index("ix_order_return_lines_return_id", "return_id"),
)
