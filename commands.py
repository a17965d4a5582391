"""The command line: `python app.py COMMAND` or the `commerce` console script (serve,
migrate, seed, worker, staff, customer erasure, partners, manifests, search,
housekeeping, pii-rotate, export-schema), run against the composition root.

This is the one module that imports `app` (the composition root never imports it back:
`python app.py` hands over here before app.py defines anything)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from datetime import timedelta
from pathlib import Path

from app import (
    Container,
    build_event_worker,
    configure_logging,
    create_metrics,
    pii_keys_of,
    search_index,
)
from domain.persisted_queries import parse_manifest
from integrations.passwords import Argon2Passwords
from integrations.tracing import process_tracing
from persistence.accounts.partners import SqlPartnerRepository
from persistence.db import Database, create_database
from persistence.events.relay import OutboxRelay
from persistence.webhooks.store import SqlWebhookStore
from resolvers.schema import build_schema
from settings import Settings, revealed

log = logging.getLogger("commerce")
DEMO_GIFT_CARD_VALUE = "50.00"  # in the store currency


async def _migrate(settings: Settings) -> None:
    from persistence.migrate import upgrade

    # The keys too: a revision may encrypt existing rows (0012 does).
    await upgrade(settings.effective_database_url, pii=pii_keys_of(settings))
    print("migrated to head")


async def _seed(settings: Settings, products: int, seed: int, if_empty: bool) -> None:
    from persistence.accounts.customers import CustomerColumns
    from persistence.pii import BlindIndex, PiiCipher
    from persistence.search.documents import search_documents_exist
    from persistence.seed import catalog_is_empty, seed_catalog

    db = create_database(settings.effective_database_url)
    try:
        if not await catalog_is_empty(db):
            if if_empty:
                # A catalog seeded before search existed gets its index now (`make run`).
                if not await search_documents_exist(db):
                    await _rebuild_search(db, settings)
                print("catalog already seeded; nothing to do")
                return
            raise SystemExit("the catalog is not empty; seed only runs on an empty catalog")
        keys = pii_keys_of(settings)
        report = await seed_catalog(
            db,
            products=products,
            customer_columns=CustomerColumns(
                PiiCipher(keys.encryption_keys), BlindIndex(keys.index_key)
            ),
            seed=seed,
            currency_code=settings.currency_code,
        )
        print(
            f"seeded {report.products} products, {report.variants} variants, "
            f"{report.reviews} reviews, {report.categories} categories, "
            f"{report.customers} customers, {report.shipping_zones} shipping zones, "
            f"{report.discounts} discounts in {report.seconds:.1f}s"
        )
        await _rebuild_search(db, settings)
        print(await _demo_gift_card(db, settings))
    finally:
        await db.dispose()


async def _demo_gift_card(db: Database, settings: Settings) -> str:
    """One gift card for the demo, issued the way giftCardCreate issues one (its code is
    shown here once and never stored)."""
    from domain.gift_card_desk import issue_gift_card
    from domain.gift_cards import format_code
    from domain.money import Money, parse_amount
    from persistence.gift_cards.code_key import gift_card_code_key
    from persistence.gift_cards.store import SqlGiftCardStore

    currency = settings.currency_code
    key = gift_card_code_key(revealed(settings.gift_card_code_key), settings.data_dir)
    amount = parse_amount(DEMO_GIFT_CARD_VALUE, currency, field="value")
    issued = await issue_gift_card(
        SqlGiftCardStore(db), key, amount, currency, note="issued by the demo seed"
    )
    value = Money(amount, currency).to_decimal_string()
    return f"gift card: {format_code(issued.code)} ({value} {currency})"


async def _rebuild_search(db: Database, settings: Settings) -> None:
    index = search_index(db, settings)
    try:
        print(f"indexed {await index.rebuild()} products for search ({index.engine})")
    finally:
        closer = getattr(index, "aclose", None)
        if closer is not None:
            await closer()


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


async def _customer_erase(settings: Settings, email: str) -> None:
    """Erase a customer (see domain/erasure.py); running it again finishes a failed run."""
    from domain.customers import canonical_email

    container = Container.create(settings)
    try:
        found = await container.customers.credentials(canonical_email(email))
        if found is None:
            raise SystemExit("no customer has this email")
        customer_id = found[0].id
        await container.erasure.erase(customer_id)
    finally:
        await container.close()
    print(f"erased customer {customer_id}: personal data gone, orders kept")  # no email in logs


async def _housekeeping(settings: Settings, command: str) -> None:
    """The worker's housekeeping jobs, once (cron, or by hand): safe at any time, concurrently."""
    container = Container.create(settings)
    try:
        if command == "orders-expire":
            print(f"expired {await container.orders.expire_unpaid()} unpaid orders")
        elif command == "payments-reconcile":
            print(f"settled {await container.orders.reconcile_payments()} unsettled orders")
        elif command == "outbox-cleanup":
            relay = OutboxRelay(container.db, container.redis)
            kept = timedelta(hours=settings.outbox_retention_hours)
            print(f"deleted {await relay.delete_published(kept)} published outbox rows")
        else:
            print(f"deleted {await container.checkout.delete_expired_keys()} idempotency keys")
    finally:
        await container.close()


async def _pii_rotate(settings: Settings) -> None:
    """Every encrypted column and cart re-encrypted under the first PII_ENCRYPTION_KEYS
    key, with counts as it goes; safe while servers run, and to run again."""
    from persistence.pii_rotation import ENCRYPTED_COLUMNS, RotationCount, rotate_table

    def report(count: RotationCount) -> None:
        print(count.line(), flush=True)

    container = Container.create(settings)
    left = 0
    try:
        for target in ENCRYPTED_COLUMNS:
            done = await rotate_table(container.db, container.pii, target, report=report)
            print(f"done {done.line()}", flush=True)
            left += len(done.left)
        carts = (0, 0, 0, 0)
        async for carts in container.cart_store.reencrypt_buyer_fields():
            print(
                "carts: {} read, {} re-encrypted, {} already current, {} changed meanwhile".format(
                    *carts
                ),
                flush=True,
            )
        print(
            "done carts: {} read, {} re-encrypted, {} already current, {} changed meanwhile".format(
                *carts
            ),
            flush=True,
        )
    finally:
        await container.close()
    if left:
        raise SystemExit(f"{left} rows kept changing during the rotation: run pii-rotate again")


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


def _webhook_store(settings: Settings) -> tuple[Database, SqlWebhookStore]:
    from persistence.pii import PiiCipher

    db = create_database(settings.effective_database_url)
    return db, SqlWebhookStore(db, PiiCipher(pii_keys_of(settings).encryption_keys))


async def _webhook_create(settings: Settings, partner: str, url: str, events: str) -> None:
    from domain.partners import NAME_PATTERN
    from domain.webhook_urls import check_url
    from domain.webhooks import (
        MAX_WEBHOOKS_PER_PARTNER,
        PartnerMissing,
        TooManyWebhooks,
        check_events,
        new_signing_secret,
    )
    from integrations.webhook_http import AddressRefused, resolve_checked

    allow_private = settings.webhook_allow_private_addresses
    names, events_problem = check_events(events.split(","))
    target, url_problem = check_url(url, allow_private=allow_private)
    problems = [p for p in (url_problem, events_problem) if p is not None]
    if not NAME_PATTERN.match(partner):
        problems.insert(0, "partner: not a partner name")
    if problems:
        raise SystemExit("; ".join(problems))
    assert target is not None
    try:  # checked again at every send: DNS may change (rebinding)
        await resolve_checked(target.host, target.port, allow_private=allow_private)
    except AddressRefused as refused:
        raise SystemExit(f"url: {refused}") from None
    secret = new_signing_secret()
    db, store = _webhook_store(settings)
    try:
        webhook = await store.create(partner, url, names, secret)
    except PartnerMissing:
        raise SystemExit(f"no active partner named {partner!r}") from None
    except TooManyWebhooks:
        raise SystemExit(
            f"{partner} has {MAX_WEBHOOKS_PER_PARTNER} enabled webhooks already: disable one"
        ) from None
    finally:
        await db.dispose()
    print(
        f"webhook {webhook.id} for {webhook.partner_name}: {webhook.url} "
        f"({', '.join(webhook.events)}); its signing secret, shown only now:"
    )
    print(secret)


async def _webhook_list(settings: Settings, partner: str | None) -> None:
    db, store = _webhook_store(settings)
    try:
        found = await store.webhooks(partner_name=partner)
    finally:
        await db.dispose()
    for webhook in found:
        if webhook.disabled_at is not None:
            state = f"disabled {webhook.disabled_at:%Y-%m-%d %H:%M} ({webhook.disabled_reason})"
        elif webhook.failing_since is not None:
            state = f"enabled, failing since {webhook.failing_since:%Y-%m-%d %H:%M}"
        else:
            state = "enabled"
        print(
            f"{webhook.id}\t{webhook.partner_name}\t{state}\t"
            f"{','.join(webhook.events)}\t{webhook.url}"
        )
    if not found:
        print("no webhooks")


async def _webhook_switch(settings: Settings, webhook_id: int, enable: bool) -> None:
    db, store = _webhook_store(settings)
    try:
        changed = (
            await store.enable(webhook_id)
            if enable
            else await store.disable(webhook_id, "disabled by an operator")
        )
    finally:
        await db.dispose()
    if not changed:
        raise SystemExit(f"no {'disabled' if enable else 'enabled'} webhook has id {webhook_id}")
    print(f"webhook {webhook_id} {'enabled' if enable else 'disabled'}")


async def _webhook_redeliver(
    settings: Settings, delivery_ids: list[int], webhook_id: int | None
) -> None:
    db, store = _webhook_store(settings)
    try:
        count = await store.redeliver(
            settings.webhook_retry_window_seconds,
            delivery_ids=delivery_ids,
            webhook_id=webhook_id,
        )
    finally:
        await db.dispose()
    if not count:
        raise SystemExit("nothing to redeliver")
    print(f"{count} deliveries queued again (same event ids: receivers dedupe)")


def manifest_build(files: list[Path], output: Path | None) -> None:
    from domain.persisted_queries import manifest_json
    from resolvers.http.manifests import ManifestError, build_manifest

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


def _serve_metrics(settings: Settings) -> None:
    """Before uvicorn starts any worker: the multiprocess directory every worker writes
    to, and (METRICS_PORT) this parent process's scrape endpoint summing them all."""
    from observability.multiprocess import prepare_multiprocess_dir

    directory = prepare_multiprocess_dir()  # before prometheus-client is imported
    if settings.metrics_port is not None:
        from observability.exposition import serve_metrics_port

        serve_metrics_port(settings.metrics_port, settings.metrics_host)
        log.info(
            "metrics on http://%s:%d/metrics (workers write to %s)",
            settings.metrics_host,
            settings.metrics_port,
            directory,
        )


async def _worker(settings: Settings) -> None:
    """The relay and the consumers until SIGTERM or SIGINT, then a clean stop."""
    if settings.redis_url is None:
        log.warning("REDIS_URL is unset: this worker's in-process Redis is its alone")
    metrics = create_metrics(settings)
    container = Container.create(settings, tracing=process_tracing(settings), metrics=metrics)
    if metrics is not None and settings.metrics_port is not None:
        from observability.exposition import serve_metrics_port

        serve_metrics_port(settings.metrics_port, settings.metrics_host, metrics)
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


def export_schema(output: Path | None) -> None:
    """The SDL on standard output (as `strawberry export-schema` does), or into a file."""
    sdl = str(build_schema()).rstrip() + "\n"
    if output is None:
        sys.stdout.write(sdl)
        return
    output.write_text(sdl)
    print(f"wrote {output}", file=sys.stderr)


def _record_id(text: str) -> int:
    """An id argument: a positive integer that fits a bigint column."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an id: {text[:40]!r}") from None
    if not 0 < value < 2**63:
        raise argparse.ArgumentTypeError(f"not an id: {text[:40]!r}")
    return value


def main(argv: list[str] | None = None, *, prog: str | None = None) -> None:
    # `prog` None: usage lines name the program run, e.g. `commerce`.
    parser = argparse.ArgumentParser(
        prog=prog, description="Commands of the commerce GraphQL server (`python app.py COMMAND`)."
    )
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
    erase = commands.add_parser(
        "customer-erase", help="erase a customer's personal data and access tokens"
    )
    erase.add_argument("--email", required=True)
    commands.add_parser(
        "orders-expire", help="cancel unpaid orders past their reservation, releasing stock"
    )
    commands.add_parser(
        "payments-reconcile",
        help="settle orders whose payment outcome never arrived, by asking the gateway",
    )
    commands.add_parser("idempotency-cleanup", help="delete idempotency keys older than 24 h")
    commands.add_parser(
        "outbox-cleanup", help="delete outbox rows published over OUTBOX_RETENTION_HOURS ago"
    )
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
    hook = commands.add_parser(
        "webhook-create", help="subscribe a partner's URL to events; prints its signing secret"
    )
    hook.add_argument("--partner", required=True)
    hook.add_argument("--url", required=True)
    hook.add_argument("--events", required=True, help="comma-separated, e.g. OrderPaid,OrderPlaced")
    hooks = commands.add_parser("webhook-list", help="list webhooks and their state")
    hooks.add_argument("--partner")
    for verb in ("disable", "enable"):
        switch = commands.add_parser(f"webhook-{verb}", help=f"{verb} a webhook")
        switch.add_argument("--id", type=_record_id, required=True)
    redeliver = commands.add_parser(
        "webhook-redeliver", help="send deliveries again (the same event ids)"
    )
    which = redeliver.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--delivery", type=_record_id, nargs="+", help="these deliveries (at most 1000), any status"
    )
    which.add_argument("--webhook", type=_record_id, help="every failed delivery of this webhook")
    manifest = commands.add_parser(
        "manifest-build", help="write an operation manifest for .graphql files"
    )
    manifest.add_argument("files", nargs="+", type=Path)
    manifest.add_argument("--output", type=Path, help="default: standard output")
    commands.add_parser("worker", help="relay outbox events and run the event consumers")
    commands.add_parser(
        "pii-rotate", help="re-encrypt every PII value under the first PII_ENCRYPTION_KEYS key"
    )
    commands.add_parser("search-reindex", help="rebuild the search index from the catalog")
    export = commands.add_parser("export-schema", help="print the SDL (or write it to a file)")
    export.add_argument("--output", type=Path, help="e.g. schema.graphql; default: stdout")
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
    elif args.command in (
        "orders-expire",
        "payments-reconcile",
        "idempotency-cleanup",
        "outbox-cleanup",
    ):
        asyncio.run(_housekeeping(settings, args.command))
    elif args.command == "create-staff":
        asyncio.run(_create_staff(settings, args.email, args.password, args.name))
    elif args.command == "customer-erase":
        asyncio.run(_customer_erase(settings, args.email))
    elif args.command == "partner-create":
        asyncio.run(
            _partner_create(settings, args.name, args.persisted_only, args.manifest, args.tier)
        )
    elif args.command == "partner-manifest":
        asyncio.run(_partner_manifest(settings, args.name, args.manifest))
    elif args.command == "partner-revoke":
        asyncio.run(_partner_revoke(settings, args.name))
    elif args.command == "webhook-create":
        asyncio.run(_webhook_create(settings, args.partner, args.url, args.events))
    elif args.command == "webhook-list":
        asyncio.run(_webhook_list(settings, args.partner))
    elif args.command in ("webhook-disable", "webhook-enable"):
        asyncio.run(_webhook_switch(settings, args.id, args.command == "webhook-enable"))
    elif args.command == "webhook-redeliver":
        if args.delivery and len(args.delivery) > 1000:
            parser.error("--delivery: at most 1000 ids at once")
        asyncio.run(_webhook_redeliver(settings, args.delivery or [], args.webhook))
    elif args.command == "seed":
        asyncio.run(_seed(settings, args.products, args.seed, args.if_empty))
    elif args.command == "worker":
        asyncio.run(_worker(settings))
    elif args.command == "pii-rotate":
        asyncio.run(_pii_rotate(settings))
    elif args.command == "search-reindex":
        asyncio.run(_search_reindex(settings))
    elif args.command == "serve":
        import uvicorn

        if settings.metrics_enabled:
            _serve_metrics(settings)
        uvicorn.run(
            "app:app",
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=args.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=settings.log_level.lower(),
            # The app applies FORWARDED_ALLOW_IPS itself; uvicorn's own middleware
            # would trust X-Forwarded-For from loopback whatever the setting says.
            proxy_headers=False,
            # A WebSocket message (a subscribe) is held to the HTTP body limit, not 16 MiB.
            ws_max_size=settings.max_body_bytes,
            # configure_logging's handler (LOG_FORMAT) serves uvicorn's loggers too.
            log_config=None,
        )


if __name__ == "__main__":  # `python app.py COMMAND` runs this module as __main__
    main(prog="app.py")
