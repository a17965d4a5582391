"""Deterministic demo and benchmark catalog: categories, products, stock, customers, reviews.

`seed_catalog(db, products=10_000)` invents everything in memory from `random.Random(seed)` and
a fixed base time (no wall clock, no network), so the same arguments always give the same rows.
It then writes them in ONE transaction: COPY on PostgreSQL, chunked executemany on SQLite. Ids
are assigned here so children reference parents without RETURNING; PostgreSQL sequences are
moved past them afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate, product
from random import Random
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.discounts import Discount, DiscountScope, DiscountValue
from persistence import tables as t
from persistence.accounts.customers import CustomerColumns
from persistence.db import Database
from persistence.discounts.store import columns_of

BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86_400
Row = tuple[Any, ...]


def _w(words: str) -> tuple[str, ...]:
    return tuple(words.split("|"))


def _cols(names: str) -> list[str]:
    return names.split()


def _spec(spec: str) -> dict[str, tuple[str, ...]]:
    """Parse "name: a|b; other: c" into {"name": ("a", "b"), "other": ("c",)}."""
    return {name: _w(values) for name, values in (p.split(": ") for p in spec.split("; "))}


@dataclass(frozen=True)
class _Kind:
    """How to invent the products of one leaf category ("a|b|c" lists word choices)."""

    nouns: str
    attrs: str  # "name: a|b; other: c|d", one value of each becomes a product attribute
    axes: str  # same shape; a product's variants are distinct combinations of these options
    price: tuple[int, int]  # base price range in minor units
    title_attrs: tuple[str, ...] = ()  # attribute values that also appear in the title
    step: float = 0.0  # price rise per value along the first axis (bigger screen, more storage)
    book: tuple[str, str] | None = None  # books: title = one of the first x one of the second


SIZES, COLOURS = "size: XS|S|M|L|XL|XXL", "colour: Black|White|Navy|Olive|Grey|Burgundy"
SHOE_SIZES = "size: 38|39|40|41|42|43|44|45|46"
BOOK_FORMATS = "format: Ebook|Paperback|Audiobook|Hardcover|Large Print|Collector's Edition"


def _book(first: str, second: str) -> _Kind:
    language = "language: English|English|English|English|Spanish|French|German"
    return _Kind("Book", language, BOOK_FORMATS, (800, 1800), step=0.25, book=(first, second))


# Category tree: a dict is a branch, a _Kind is a leaf (products go into leaves only).
_Branch = dict[str, "_Branch | _Kind"]
TREE: _Branch = {
    "Electronics": {
        "Televisions": _Kind(
            "TV",
            "resolution: 4K|4K|8K|Full HD; screen technology: OLED|QLED|Mini-LED|LED;"
            " smart platform: Google TV|Roku|webOS|Tizen|Fire TV; refresh rate: 60 Hz|120 Hz",
            'screen size: 43"|50"|55"|65"|75"|85"',
            (30_000, 120_000),
            ("resolution", "screen technology"),
            step=0.3,
        ),
        "Audio": {
            "Headphones": _Kind(
                "Headphones",
                "type: Over-ear|On-ear|In-ear|Earbuds; noise cancelling: Active|Hybrid|Passive;"
                " connectivity: Bluetooth 5.3|Bluetooth 5.0|Wired; battery life: 20 h|30 h|40 h",
                "colour: Black|White|Silver|Navy|Rose Gold|Sage",
                (2_000, 45_000),
                ("type",),
            ),
            "Speakers": _Kind(
                "Speaker",
                "type: Portable|Bookshelf|Smart|Party; power output: 10 W|20 W|40 W|80 W",
                "colour: Black|White|Blue|Red|Sand|Forest",
                (3_000, 60_000),
                ("type",),
            ),
        },
        "Laptops": _Kind(
            "Laptop",
            "CPU: Intel Core i5|Intel Core i7|AMD Ryzen 5|AMD Ryzen 7|Apple M3;"
            ' RAM: 8 GB|16 GB|32 GB|64 GB; display: 13.3"|14"|15.6"|16"; OS: Windows 11|macOS',
            "storage: 256 GB|512 GB|1 TB|2 TB; colour: Space Grey|Silver|Black",
            (50_000, 200_000),
            ("display",),
            step=0.15,
        ),
        "Cameras": _Kind(
            "Mirrorless Camera",
            "sensor: Full-frame|APS-C|Micro Four Thirds; megapixels: 20 MP|24 MP|33 MP|45 MP;"
            " video: 4K 30fps|4K 60fps|6K 30fps|8K 24fps",
            "kit: Body only|18-55mm lens|24-70mm lens; colour: Black|Silver",
            (40_000, 250_000),
            ("sensor",),
            step=0.25,
        ),
    },
    "Clothing": {
        "Shirts": _Kind(
            "Shirt",
            "material: Cotton|Linen|Oxford Cotton|Flannel|Chambray; fit: Slim|Regular|Relaxed",
            f"{SIZES}; {COLOURS}",
            (1_500, 9_000),
            ("fit", "material"),
        ),
        "Jeans": _Kind(
            "Jeans",
            "fit: Skinny|Slim|Straight|Bootcut|Relaxed; rise: Low|Mid|High; wash: Light|Dark",
            "waist: 28|30|32|34|36|38; length: 30|32|34",
            (3_000, 15_000),
            ("fit",),
        ),
        "Shoes": _Kind(
            "Shoes",
            "upper: Leather|Suede|Canvas|Knit; sole: Rubber|Leather|EVA foam",
            f"{SHOE_SIZES}; colour: Black|Brown|White",
            (4_000, 25_000),
            ("upper",),
        ),
        "Jackets": _Kind(
            "Jacket",
            "material: Down|Wool|Denim|Leather|Nylon; water resistance: None|Light|Full",
            f"{SIZES}; {COLOURS}",
            (6_000, 40_000),
            ("material",),
        ),
    },
    "Books": {
        "Fiction": _book(
            "The Silent|The Last|A Winter|The Hidden|Beneath the|The Glass|The Paper",
            "Harbor|Orchard|Kingdom|Lighthouse|River|Garden|Cartographer|Summer",
        ),
        "Science": _book(
            "The Physics of|A Brief History of|The Hidden Life of|Understanding|The Science of",
            "Time|Cells|Stars|Climate|Memory|Quantum Matter|Oceans|the Brain",
        ),
        "Cooking": _book(
            "The Everyday|Simple|The Modern|Slow|The Joy of|Weeknight",
            "Baking|Vegetarian Kitchen|Pasta|Grilling|Spices|Soups|Bread",
        ),
        "History": _book(
            "The Rise of|Empires of|The Fall of|Voyages of|The Age of|Letters from",
            "Rome|the Silk Road|the Atlantic|Steam|the Medici|Byzantium|the Steppe",
        ),
    },
    "Home": {
        "Kitchen": {
            "Cookware": _Kind(
                "Frying Pan|Saucepan|Dutch Oven|Wok|Stockpot",
                "material: Stainless Steel|Cast Iron|Carbon Steel|Copper; induction: Yes|No",
                "diameter: 20 cm|24 cm|28 cm|32 cm; colour: Graphite|Cream|Red",
                (2_500, 30_000),
                ("material",),
                step=0.15,
            ),
            "Small Appliances": _Kind(
                "Blender|Coffee Maker|Toaster|Kettle|Air Fryer|Stand Mixer",
                "power: 800 W|1200 W|1500 W|2000 W; warranty: 1 year|2 years|3 years",
                "colour: Black|White|Red|Cream|Sage|Stainless",
                (2_500, 40_000),
            ),
        },
        "Furniture": _Kind(
            "Sofa|Armchair|Dining Table|Bookshelf|Desk|Bed Frame",
            "material: Oak|Walnut|Pine|Steel|Velvet; style: Mid-century|Scandinavian|Modern",
            "finish: Natural|Walnut|White|Black|Grey|Green",
            (8_000, 200_000),
            ("style",),
        ),
        "Lighting": _Kind(
            "Floor Lamp|Table Lamp|Pendant Light|Desk Lamp|Wall Sconce",
            "bulb: LED|E27|GU10; dimmable: Yes|No; colour temperature: 2700 K|3000 K",
            "finish: Brass|Matte Black|White|Chrome; shade: Linen|Glass",
            (2_000, 30_000),
        ),
    },
    "Sports": {
        "Cycling": _Kind(
            "Road Bike|Gravel Bike|Mountain Bike|City Bike|E-Bike",
            "frame: Aluminium|Carbon|Steel; gears: 1x11|2x11|1x12|2x12; wheel size: 27.5|29|700c",
            "frame size: XS|S|M|L|XL; colour: Black|Sand|Teal",
            (40_000, 400_000),
            ("frame",),
        ),
        "Running": _Kind(
            "Running Shoes|Trail Shoes|Racing Flats",
            "drop: 4 mm|6 mm|8 mm|10 mm; cushioning: Light|Medium|Max",
            f"{SHOE_SIZES}; colour: Volt|Black|White|Coral",
            (6_000, 22_000),
        ),
        "Camping": _Kind(
            "Tent|Sleeping Bag|Backpack|Camping Stove|Sleeping Mat",
            "season: 2-season|3-season|4-season; weight: 650 g|1.2 kg|2.1 kg|3.4 kg",
            "colour: Forest|Sand|Orange|Slate|Sky|Black",
            (3_000, 60_000),
            ("season",),
        ),
    },
}
BRANDS = {
    "Electronics": _w("Veltron|Auralis|Nexora|Quantix|Lumora|Sonique|Kaidō|Brightwave"),
    "Clothing": _w("Harbor & Pine|Northloom|Velde|Marlowe|Tallis & Co|Saltmarsh|Oakhem"),
    "Books": _w("Larkspur Press|Meridian House|Blue Kite Books|Ashgrove|Halcyon|Foxglove"),
    "Home": _w("Hearthly|Nordhaus|Copperleaf|Maison Ruelle|Stillwater|Birchwood"),
    "Sports": _w("Ridgeline|Trailforge|Velocita|Summit & Co|Kestrel|Northpeak|Stride"),
}
MODELS = {
    "Electronics": _w("Aria|Vista Pro|Lumen X|Horizon 5|Pulse|Nova S|Zenith|Echo 2"),
    "Clothing": _w("Classic|Heritage|Coastline|Everyday|Weekender|Studio|Harbour"),
    "Home": _w("Nordic|Atelier|Essential|Signature|Loft|Heritage|Origin"),
    "Sports": _w("Apex|Tempo|Ridge|Summit|Aero|Trail Pro|Vector"),
}
FIRST = _w("Ana|Ben|Chloe|David|Elif|Felix|Grace|Hiro|Isla|Jonas|Kavya|Liam|Maya|Noah|Olga")
LAST = _w("Pereira|Smith|Okafor|Nguyen|Müller|Rossi|Kowalski|Tanaka|Haddad|Larsen|Silva|Reyes")
DESCRIPTIONS = _w(
    "The {title} is built for everyday use, with {feature}."
    "|Meet the {title}: {feature} and a design that gets out of the way."
    "|Thoughtfully made by {brand}, the {title} combines {feature} with lasting quality."
)
BOOK_DESCRIPTIONS = _w(
    "{title} by {author}: {pages} pages you will not want to put down."
    "|A thoughtful {pages}-page book by {author}, published by {brand}."
    "|{author} brings a fresh voice to a familiar subject in {title}."
)
CLOSERS = _w(
    "Backed by a two-year {brand} warranty.|Free returns within 30 days."
    "|Designed and tested by the {brand} team.|Ships within two business days."
)
REVIEW_TITLES = {
    5: _w("Absolutely love it|Exceeded expectations|Five stars|Worth every penny"),
    4: _w("Very good|Really happy with it|Solid choice|Great value"),
    3: _w("It's okay|Decent but not perfect|Does the job|Mixed feelings"),
    2: _w("Disappointing|Not as described|Expected more"),
    1: _w("Do not buy|Broke quickly|Waste of money|Returned it"),
}
REVIEW_BODIES = {
    5: _w("Outstanding quality, better than I hoped.|Exactly what I wanted and more."),
    4: _w("Great overall, with one or two small quirks.|Good quality for the price."),
    3: _w("Fine for the price, nothing special.|Some things are great, others less so."),
    2: _w("The quality is lower than the photos suggest.|It works, but barely."),
    1: _w("Stopped working within a week.|Nothing like the description."),
}
REVIEW_EXTRAS = _w("Delivery was quick.|Bought it as a gift.|Used it daily for a month.|")
RATING_PROFILES = ((2, 5, 15, 50, 100), (5, 12, 25, 55, 100), (15, 30, 55, 80, 100))  # cumulative
VARIANT_COUNTS, VARIANT_CUM = (1, 2, 3, 4, 5, 6), tuple(accumulate((5, 5, 15, 25, 25, 25)))
JSON_COLUMNS = {"attributes", "options"}
COLUMNS: dict[Table, list[str]] = {  # also the insert order: parents first
    t.categories: _cols("id parent_id slug name description path position"),
    t.customers: _cols(
        "id email_encrypted email_index display_name_encrypted is_staff created_at updated_at"
    ),
    t.products: _cols(
        "id slug title description brand category_id status attributes price_min price_max"
        " currency_code created_at updated_at"
    ),
    t.product_images: _cols("id product_id url alt position"),
    t.product_variants: _cols(
        "id product_id sku title options price compare_at_price currency_code position"
        " created_at updated_at"
    ),
    t.inventory_levels: _cols("variant_id available updated_at"),
    t.reviews: _cols("id product_id customer_id rating title body created_at"),
    t.product_rating_summaries: _cols("product_id rating_count rating_sum rating_average"),
}


@dataclass(frozen=True)
class SeedReport:
    categories: int
    products: int
    variants: int
    reviews: int
    customers: int
    shipping_zones: int
    discounts: int
    seconds: float


async def catalog_is_empty(db: Database) -> bool:
    """True when there are no products yet (the seed's precondition)."""
    async with db.writer.connect() as conn:
        return await _first_id(conn, t.products) is None


async def seed_catalog(
    db: Database,
    *,
    products: int,
    customer_columns: CustomerColumns,
    seed: int = 42,
    currency_code: str = "USD",
) -> SeedReport:
    """Insert a generated catalog of `products` products in one transaction.

    Raises RuntimeError if products or categories already exist. Existing customers are kept;
    seeded customers get the ids after them.
    """
    if products < 1:
        raise ValueError("products must be at least 1")
    started = time.perf_counter()
    async with db.writer.begin() as conn:
        for table in (t.products, t.categories):
            if await _first_id(conn, table) is not None:
                raise RuntimeError(f"refusing to seed: the {table.name} table is not empty")
        customer_base = await conn.scalar(select(func.coalesce(func.max(t.customers.c.id), 0))) or 0
        data = await asyncio.to_thread(
            _generate, products, Random(seed), currency_code, int(customer_base)
        )
        data[t.customers] = [_stored_customer(customer_columns, row) for row in data[t.customers]]
        if db.is_postgres:
            await _copy_postgres(conn, data)
        else:
            await _insert_sqlite(conn, data)
        zones = await _seed_shipping(conn)
        discounts = await _seed_discounts(conn)
    return SeedReport(
        categories=len(data[t.categories]),
        products=len(data[t.products]),
        variants=len(data[t.product_variants]),
        reviews=len(data[t.reviews]),
        customers=len(data[t.customers]),
        shipping_zones=zones,
        discounts=discounts,
        seconds=round(time.perf_counter() - started, 3),
    )


# The demo's shipping: two zones with two methods each (prices in minor units, days).
# Every other country ships by the built-in default zone (SHIPPING_FLAT_RATE, free from
# FREE_SHIPPING_THRESHOLD).
SEED_ZONES: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, int, int, int], ...]], ...] = (
    ("Domestic", ("US",), (("Standard", 499, 3, 5), ("Express", 1499, 1, 2))),
    (
        "Europe",
        ("AT", "BE", "DE", "ES", "FR", "IE", "IT", "NL"),
        (("Standard", 999, 5, 8), ("Express", 2499, 2, 3)),
    ),
)


async def _seed_shipping(conn: AsyncConnection) -> int:
    """The demo zones, unless staff already set shipping up (their countries would
    collide with ours)."""
    if await _first_id(conn, t.shipping_zones) is not None:
        return 0
    for name, countries, methods in SEED_ZONES:
        zone_id = await conn.scalar(
            t.shipping_zones.insert()
            .values(name=name, created_at=BASE_TIME, updated_at=BASE_TIME)
            .returning(t.shipping_zones.c.id)
        )
        await conn.execute(
            t.shipping_zone_countries.insert(),
            [{"zone_id": zone_id, "country_code": code} for code in countries],
        )
        await conn.execute(
            t.shipping_methods.insert(),
            [
                {
                    "zone_id": zone_id,
                    "title": title,
                    "price": price,
                    "min_delivery_days": low,
                    "max_delivery_days": high,
                    "active": True,
                    "created_at": BASE_TIME,
                    "updated_at": BASE_TIME,
                }
                for title, price, low, high in methods
            ],
        )
    return len(SEED_ZONES)


# The demo's discounts: a code for the whole order, and an automatic sale on the first
# top-level category (a category discount covers its descendants).
WELCOME_CODE = "WELCOME10"


async def _seed_discounts(conn: AsyncConnection) -> int:
    """The demo discounts, unless staff already made some (WELCOME10 may be theirs)."""
    if await _first_id(conn, t.discounts) is not None:
        return 0
    first_root = await conn.scalar(
        select(t.categories.c.id)
        .where(t.categories.c.parent_id.is_(None))
        .order_by(t.categories.c.position, t.categories.c.id)
        .limit(1)
    )
    demo = [
        Discount(0, "Welcome: 10% off your order", WELCOME_CODE, DiscountValue.percentage(1000))
    ]
    if first_root is not None:
        demo.append(
            Discount(
                0,
                "Sale: 15% off",
                None,
                DiscountValue.percentage(1500),
                scope=DiscountScope.CATEGORIES,
                category_ids=frozenset({int(first_root)}),
            )
        )
    await conn.execute(
        t.discounts.insert(),
        [{**columns_of(d), "created_at": BASE_TIME, "updated_at": BASE_TIME} for d in demo],
    )
    return len(demo)


def _stored_customer(columns: CustomerColumns, row: Row) -> Row:
    customer_id, email, name, *rest = row
    stored = columns.stored(email=email, display_name=name)
    return (
        customer_id,
        stored["email_encrypted"],
        stored["email_index"],
        stored["display_name_encrypted"],
        *rest,
    )


async def _first_id(conn: AsyncConnection, table: Table) -> int | None:
    return await conn.scalar(select(table.c.id).limit(1))


async def _copy_postgres(conn: AsyncConnection, data: dict[Table, list[Row]]) -> None:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    for table, rows in data.items():
        columns = COLUMNS[table]
        dumped = [i for i, name in enumerate(columns) if name in JSON_COLUMNS]
        if dumped:  # the jsonb codec SQLAlchemy installs on asyncpg takes JSON text
            rows = [
                tuple(json.dumps(v) if i in dumped else v for i, v in enumerate(r)) for r in rows
            ]
        await driver.copy_records_to_table(table.name, records=rows, columns=list(columns))
    for table in data:
        if "id" in table.c:
            await conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"(SELECT max(id) FROM {table.name}))"
                )
            )


async def _insert_sqlite(conn: AsyncConnection, data: dict[Table, list[Row]]) -> None:
    for table, rows in data.items():
        columns = COLUMNS[table]
        for start in range(0, len(rows), 5_000):
            chunk = rows[start : start + 5_000]
            await conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in chunk])


def _generate(count: int, rng: Random, currency: str, customer_base: int) -> dict[Table, list[Row]]:
    n_customers = max(100, min(5_000, count))  # enough for 50 distinct reviewers per product
    gen = _Generator(rng, currency, range(customer_base + 1, customer_base + n_customers + 1))
    leaves = gen.categories()
    gen.customers()
    for pid in range(1, count + 1):
        gen.product(pid, *rng.choice(leaves))
    return gen.data


class _Generator:
    """Appends rows (tuples in COLUMNS order) to `data`, drawing every choice from `rng`."""

    def __init__(self, rng: Random, currency: str, customer_ids: range) -> None:
        self.rng, self.currency, self.customer_ids = rng, currency, customer_ids
        self.data: dict[Table, list[Row]] = {table: [] for table in COLUMNS}

    def categories(self) -> list[tuple[int, str, _Kind]]:
        """Breadth first, so roots get the smallest ids; path is "/root/.../self/"."""
        out, leaves = self.data[t.categories], []
        queue: deque[tuple[int | None, str, str, str, _Branch | _Kind, int]] = deque(
            (None, "/", name, name, node, i) for i, (name, node) in enumerate(TREE.items())
        )
        while queue:
            parent_id, parent_path, root, name, node, position = queue.popleft()
            cid = len(out) + 1
            path = f"{parent_path}{cid}/"
            blurb = f"Shop {name.lower()}: curated picks, honest reviews and fast delivery."
            out.append((cid, parent_id, _slugify(name), name, blurb, path, position))
            if isinstance(node, _Kind):
                leaves.append((cid, root, node))
            else:
                queue.extend(
                    (cid, path, root, n, sub, i) for i, (n, sub) in enumerate(node.items())
                )
        return leaves

    def customers(self) -> None:
        rng = self.rng
        for cid in self.customer_ids:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)[0]}."
            joined = BASE_TIME - timedelta(seconds=rng.randrange(DAY, 1_000 * DAY))
            row = (cid, f"customer{cid}@example.com", name, False, joined, joined)
            self.data[t.customers].append(row)

    def product(self, pid: int, category_id: int, root: str, kind: _Kind) -> None:
        rng = self.rng
        brand = rng.choice(BRANDS[root])
        attrs = {name: rng.choice(values) for name, values in _spec(kind.attrs).items()}
        if kind.book:
            title = " ".join(rng.choice(_w(words)) for words in kind.book)
            author, pages = f"{rng.choice(FIRST)} {rng.choice(LAST)}", str(rng.randint(96, 880))
            attrs = {"author": author, "pages": pages, "publisher": brand, **attrs}
        else:
            noun, model = rng.choice(_w(kind.nouns)), rng.choice(MODELS[root])
            title = " ".join([brand, model, *(attrs[a] for a in kind.title_attrs), noun])
        slug = f"{_slugify(title)}-{pid}"
        plain = (
            f"{v} {k}" for k, v in attrs.items() if k not in v.lower() and v not in ("Yes", "No")
        )
        feature = next(plain, "care")
        blurbs = BOOK_DESCRIPTIONS if kind.book else DESCRIPTIONS
        template = f"{rng.choice(blurbs)} {rng.choice(CLOSERS)}"
        description = template.format(title=title, brand=brand, feature=feature, **attrs)
        created = BASE_TIME - timedelta(seconds=rng.randrange(DAY, 730 * DAY))
        updated = created + timedelta(
            seconds=rng.randrange(int((BASE_TIME - created).total_seconds()))
        )
        status = rng.choices(("active", "draft", "archived"), cum_weights=(95, 98, 100))[0]
        prices = self._variants(pid, kind, created, updated)
        attributes = [{"name": k, "value": v} for k, v in attrs.items()]
        self.data[t.products].append(
            (
                pid, slug, title, description, brand, category_id, status, attributes,
                min(prices), max(prices), self.currency, created, updated,
            )
        )  # fmt: skip
        images = self.data[t.product_images]
        for position in range(rng.randint(1, 4)):
            url = f"https://cdn.example.com/products/{slug}/{position + 1}.jpg"
            alt = title if position == 0 else f"{title}, view {position + 1}"
            images.append((len(images) + 1, pid, url, alt, position))
        self._reviews(pid, created)

    def _variants(self, pid: int, kind: _Kind, created: datetime, updated: datetime) -> list[int]:
        """1-6 distinct option combinations, pricier along the first axis; returns the prices."""
        rng, variants, prices = self.rng, self.data[t.product_variants], []
        axes = list(_spec(kind.axes).items())
        combos = list(product(*(range(len(values)) for _, values in axes)))
        wanted = rng.choices(VARIANT_COUNTS, cum_weights=VARIANT_CUM)[0]
        picked = sorted(rng.sample(combos, min(wanted, len(combos))))
        base, on_sale, sold_out = rng.randint(*kind.price), rng.random() < 0.2, rng.random() < 0.03
        for position, combo in enumerate(picked):
            options = [
                {"name": name, "value": values[i]}
                for (name, values), i in zip(axes, combo, strict=True)
                if len(picked) > 1  # a lone variant carries no choice
            ]
            title = " / ".join(o["value"] for o in options) or "Default"
            price = _price(base * (1 + kind.step * combo[0]))
            compare_at = _price(price * rng.uniform(1.1, 1.5)) if on_sale else None
            vid, sku = len(variants) + 1, f"SKU-{pid:06d}-{position + 1}"
            variants.append(
                (vid, pid, sku, title, options, price, compare_at, self.currency, position,
                 created, updated)
            )  # fmt: skip
            available = 0 if sold_out or rng.random() < 0.08 else rng.randint(1, 200)
            self.data[t.inventory_levels].append((vid, available, updated))
            prices.append(price)
        return prices

    def _reviews(self, pid: int, created: datetime) -> None:
        """0-50 reviews from distinct customers, after the product appeared, plus the summary."""
        rng, reviews, total = self.rng, self.data[t.reviews], 0
        profile, age = rng.choice(RATING_PROFILES), int((BASE_TIME - created).total_seconds())
        authors = rng.sample(self.customer_ids, min(rng.randint(0, 50), len(self.customer_ids)))
        for customer_id in authors:
            rating = rng.choices((1, 2, 3, 4, 5), cum_weights=profile)[0]
            title = rng.choice(REVIEW_TITLES[rating])
            body = f"{rng.choice(REVIEW_BODIES[rating])} {rng.choice(REVIEW_EXTRAS)}".rstrip()
            when = created + timedelta(seconds=rng.randrange(60, age))
            reviews.append((len(reviews) + 1, pid, customer_id, rating, title, body, when))
            total += rating
        average = round(total / len(authors), 2) if authors else 0.0
        self.data[t.product_rating_summaries].append((pid, len(authors), total, average))


def _price(amount: float) -> int:
    """Round to a shelf price ending in 99 minor units (12345.6 -> 12399)."""
    return int(amount) // 100 * 100 + 99


def _slugify(value: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
