"""Objects requests share: a variant built once per (record, stock level), and each plain
selection of a shared object completed once and kept on it, never confused with another
selection's, never surviving a change of stock, and bounded however many arrive."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry
from strawberry.extensions import ParserCache

from domain import catalog
from persistence.catalog.records import product_from_row
from resolvers.extensions.compiled import PlanCache
from resolvers.extensions.execution import plain_data_context
from schema import catalog as schema_catalog
from schema.catalog import SHARED_VARIANTS_MAX, Category, Product, ProductVariant
from schema.common import SHARED_COMPLETIONS, SHARED_SELECTIONS_MAX, Money, shared


def variant(variant_id: int = 7, price: int = 1250) -> catalog.Variant:
    return catalog.Variant(
        id=variant_id,
        product_id=1,
        sku=f"MUG-{variant_id}",
        title="Blue",
        options=(catalog.SelectedOption(name="Colour", value="Blue"),),
        price=price,
        compare_at_price=None,
        currency_code="USD",
        position=0,
    )


def level(available: int, variant_id: int = 7) -> catalog.InventoryLevel:
    return catalog.InventoryLevel(variant_id=variant_id, available=available)


def test_the_same_record_at_the_same_level_is_the_same_shared_variant() -> None:
    record = variant()

    first = ProductVariant.of(record, level(3))
    again = ProductVariant.of(record, level(3))
    sold = ProductVariant.of(record, level(0))
    equal_but_new = ProductVariant.of(variant(), level(0))  # a record read afresh

    assert again is first
    assert (first.quantity_available, first.available_for_sale) == (3, True)
    assert sold is not first
    assert (sold.quantity_available, sold.available_for_sale) == (0, False)
    assert ProductVariant.of(record, level(0)) is sold  # the latest level is kept
    assert equal_but_new is not sold and equal_but_new.quantity_available == 0
    assert ProductVariant.of(record, None).quantity_available == 0


def test_the_shared_variants_are_bounded() -> None:
    records = [variant(n) for n in range(SHARED_VARIANTS_MAX + 10)]  # all alive at once

    for record in records:
        ProductVariant.of(record, level(1, record.id))

    assert 0 < len(schema_catalog._SHARED_VARIANTS) <= SHARED_VARIANTS_MAX


def product_row(title: str = "Mug", rating: float = 4.5) -> dict[str, object]:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "id": 1, "slug": "mug", "title": title, "description": "A mug.", "brand": "Acme",
        "category_id": 3, "status": "active", "attributes": [{"name": "Size", "value": "M"}],
        "price_min": 1250, "price_max": 1250, "currency_code": "USD",
        "created_at": moment, "updated_at": moment, "rating_average": rating, "rating_count": 2,
    }  # fmt: skip


def test_equal_product_rows_give_one_record_and_a_changed_row_a_new_one() -> None:
    first, again = product_from_row(product_row()), product_from_row(product_row())
    retitled, rated = product_from_row(product_row("Cup")), product_from_row(product_row(rating=5))

    assert again is first
    assert retitled is not first and retitled.title == "Cup"
    assert rated is not first and rated.rating.average == 5


def test_the_same_product_inputs_give_the_same_shared_product() -> None:
    record = product_from_row(product_row())
    category = Category.of(catalog.Category(3, None, "mugs", "Mugs", "", "/3/", 0))
    images = [catalog.ProductImage(1, 1, "https://img/1.jpg", "A mug", 0)]
    variants = [ProductVariant.of(variant(), level(3))]

    built = Product.of(record, category=category, images=images, variants=variants)
    # Fresh lists of the same objects, as each request passes them.
    again = Product.of(record, category=category, images=list(images), variants=list(variants))
    sold_out = Product.of(
        record, category=category, images=images, variants=[ProductVariant.of(variant(), level(0))]
    )
    uncategorised = Product.of(record, category=None, images=images, variants=variants)

    assert again is built and hasattr(built, SHARED_COMPLETIONS)
    assert built.available_for_sale and not sold_out.available_for_sale
    assert uncategorised is not built and uncategorised.category is None
    assert Category.of(category.record) is category


@strawberry.type
class Query:
    @strawberry.field
    def variants(self, available: int = 2) -> list[ProductVariant]:
        return [ProductVariant.of(RECORD, level(available))]

    @strawberry.field
    def fresh(self) -> Money:
        return Money(amount=money.amount, currency_code="USD")  # built per request


RECORD = variant(99, price=1999)
money = catalog.Money(1999, "USD")
PARSED = ParserCache()  # one parse, so one document and one plan, per text
schema = strawberry.Schema(query=Query, extensions=[lambda: PARSED])
schema.execution_context_class = plain_data_context(schema._schema, PlanCache())


async def answer(document: str) -> object:
    result = await schema.execute(document)
    assert result.errors is None
    return result.data


async def test_each_selection_of_a_shared_variant_completes_once_and_to_itself() -> None:
    price_only = "{ variants { price { amount } } }"
    stock_only = "{ variants { sku quantityAvailable availableForSale } }"

    first = await answer(price_only)
    second = await answer(price_only)
    stock = await answer(stock_only)
    after_a_sale = await answer("{ variants(available: 0) { sku quantityAvailable } }")

    assert first == {"variants": [{"price": {"amount": "19.99"}}]}
    assert second == first
    # The second answer is the first one's completion, as it was kept on the object.
    assert second["variants"][0] is first["variants"][0]  # type: ignore[index]
    assert stock == {
        "variants": [{"sku": "MUG-99", "quantityAvailable": 2, "availableForSale": True}]
    }
    assert after_a_sale == {"variants": [{"sku": "MUG-99", "quantityAvailable": 0}]}


async def test_a_shared_object_keeps_a_bounded_number_of_selections() -> None:
    selections = ["sku", "title", "id", "quantityAvailable", "availableForSale", "sku title"]

    for fields in selections:
        assert await answer(f"{{ variants(available: 5) {{ {fields} }} }}")

    kept = getattr(ProductVariant.of(RECORD, level(5)), SHARED_COMPLETIONS)
    assert 1 <= len(kept) <= SHARED_SELECTIONS_MAX


async def test_objects_built_per_request_keep_nothing() -> None:
    assert await answer("{ fresh { amount currencyCode } }") == {
        "fresh": {"amount": "19.99", "currencyCode": "USD"}
    }
    assert not hasattr(Money(amount=money.amount, currency_code="USD"), SHARED_COMPLETIONS)
    assert (
        getattr(shared(Money(amount=money.amount, currency_code="USD")), SHARED_COMPLETIONS) == {}
    )
