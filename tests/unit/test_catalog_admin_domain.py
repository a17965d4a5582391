"""Staff catalog edits through in-memory fakes of the editor and the cache: who may edit,
what a conflict answers, which cached records are dropped, and stock that never goes
below zero."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.catalog_admin import CatalogAdmin, ProductChanges, ProductDraft, VariantDraft
from domain.customers import Customer
from domain.errors import ForbiddenError, Rejected, UserErrorCode
from tests.fakes.catalog import FakeCacheInvalidator
from tests.fakes.catalog_editor import FakeCatalogEditor

STAFF = Customer(1, "staff@example.com", "Sam", True, datetime(2026, 3, 1, tzinfo=UTC))
SHOPPER = Customer(2, "ann@example.com", "Ann", False, datetime(2026, 3, 1, tzinfo=UTC))


@pytest.fixture
def parts() -> tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator]:
    editor, cache = FakeCatalogEditor(), FakeCacheInvalidator()
    return CatalogAdmin(editor, cache, "USD"), editor, cache


def codes(raised: pytest.ExceptionInfo[Rejected]) -> list[UserErrorCode]:
    return [e.code for e in raised.value.errors]


async def test_a_shopper_cannot_edit_the_catalog(
    parts: tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator],
) -> None:
    admin, editor, cache = parts

    with pytest.raises(ForbiddenError):
        await admin.create_product(SHOPPER, ProductDraft("Mug"))

    assert editor.products == {} and cache.calls == []


async def test_a_renamed_slug_drops_the_product_cached_under_both_slugs(
    parts: tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator],
) -> None:
    admin, _editor, cache = parts
    mug = await admin.create_product(STAFF, ProductDraft("Crème Mug"))
    retitled = await admin.update_product(STAFF, mug.id, ProductChanges(title="Big Mug"))
    cache.calls.clear()

    renamed = await admin.update_product(STAFF, mug.id, ProductChanges(slug="big-mug"))

    assert mug.slug == "creme-mug" and retitled.slug == "creme-mug"  # links keep working
    assert renamed.slug == "big-mug"
    assert cache.calls == [("products", [mug.id], ["creme-mug", "big-mug"])]


async def test_a_taken_slug_is_a_user_error_and_changes_nothing(
    parts: tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator],
) -> None:
    admin, editor, _cache = parts
    await admin.create_product(STAFF, ProductDraft("Mug"))
    lamp = await admin.create_product(STAFF, ProductDraft("Lamp"))

    with pytest.raises(Rejected) as raised:
        await admin.update_product(STAFF, lamp.id, ProductChanges(slug="mug", title="Mug"))

    assert codes(raised) == [UserErrorCode.SLUG_TAKEN]
    assert (editor.products[lamp.id].slug, editor.products[lamp.id].title) == ("lamp", "Lamp")


async def test_a_new_variant_sets_the_price_range_and_drops_product_and_variant(
    parts: tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator],
) -> None:
    admin, editor, cache = parts
    mug = await admin.create_product(STAFF, ProductDraft("Mug"))
    await admin.create_variant(STAFF, VariantDraft(mug.id, "MUG-S", "Small", "9.50", stock=3))
    cache.calls.clear()

    large = await admin.create_variant(STAFF, VariantDraft(mug.id, "MUG-L", "Large", "14.00"))

    product = editor.products[mug.id]
    assert (product.price_min, product.price_max) == (950, 1400)
    assert cache.calls == [("products", [mug.id], ["mug"]), ("variants", [large.id], [])]
    with pytest.raises(Rejected) as raised:
        await admin.create_variant(STAFF, VariantDraft(mug.id, "MUG-L", "Again", "1.00"))
    assert codes(raised) == [UserErrorCode.SKU_TAKEN]


async def test_stock_never_goes_below_zero_and_the_error_says_what_is_left(
    parts: tuple[CatalogAdmin, FakeCatalogEditor, FakeCacheInvalidator],
) -> None:
    admin, editor, _cache = parts
    mug = await admin.create_product(STAFF, ProductDraft("Mug"))
    small = await admin.create_variant(STAFF, VariantDraft(mug.id, "MUG-S", "S", "9.50", stock=3))

    with pytest.raises(Rejected) as short:
        await admin.adjust_inventory(STAFF, small.id, -4, None)
    with pytest.raises(Rejected) as both:
        await admin.adjust_inventory(STAFF, small.id, 1, 5)
    with pytest.raises(Rejected) as missing:
        await admin.adjust_inventory(STAFF, 999, 1, None)
    level = await admin.adjust_inventory(STAFF, small.id, -3, None)

    assert codes(short) == [UserErrorCode.INSUFFICIENT_STOCK]
    assert "only 3 available" in short.value.errors[0].message
    assert codes(both) == [UserErrorCode.INVALID] and codes(missing) == [
        UserErrorCode.VARIANT_NOT_FOUND
    ]
    assert level.available == 0 and editor.stock[small.id] == 0
