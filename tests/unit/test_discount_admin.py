"""Staff discount use cases against the in-memory store: what the API cannot reach (the
input guard refuses control characters first) and how an update merges its changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from domain.customers import Customer
from domain.discount_desk import DiscountAdmin, DiscountChanges, DiscountDraft, DiscountStore
from domain.discounts import DiscountKind, DiscountScope
from domain.errors import ForbiddenError, Rejected, UserErrorCode
from tests.fakes.discounts import FakeDiscountStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
STAFF = Customer(1, "boss@example.com", "Boss", True, T0)
SHOPPER = Customer(2, "ann@example.com", "Ann", False, T0)
TEN = DiscountDraft(title="Ten", value_type=DiscountKind.PERCENTAGE, basis_points=1000)


def admin(store: DiscountStore) -> DiscountAdmin:
    return DiscountAdmin(store, "USD")


def codes(rejected: pytest.ExceptionInfo[Rejected]) -> list[tuple[tuple[str, ...], str]]:
    return [(e.field, e.code.value) for e in rejected.value.errors]


@pytest.mark.parametrize("title", ["Ten\x01off", "\ud800"])
async def test_a_title_with_control_characters_is_invalid(title: str) -> None:
    with pytest.raises(Rejected) as refused:
        await admin(FakeDiscountStore()).create(STAFF, replace(TEN, title=title))

    assert codes(refused) == [(("title",), UserErrorCode.INVALID.value)]


async def test_shoppers_are_refused_before_the_store_is_asked() -> None:
    store = FakeDiscountStore(products=[7])
    draft = replace(TEN, scope=DiscountScope.PRODUCTS, product_ids=[7])

    with pytest.raises(ForbiddenError):
        await admin(store).create(SHOPPER, draft)
    with pytest.raises(ForbiddenError):
        await admin(store).update(SHOPPER, 1, DiscountChanges(title="x"))

    assert store.rows == {} and store.looked_up == []


async def test_an_update_keeps_what_it_does_not_name_and_looks_up_only_the_ids_it_sends() -> None:
    store = FakeDiscountStore(products=[7, 8])
    desk = admin(store)
    made = await desk.create(
        STAFF,
        replace(TEN, scope=DiscountScope.PRODUCTS, product_ids=[7]),
    )

    renamed = await desk.update(STAFF, made.id, DiscountChanges(title="Eleven", basis_points=1100))
    widened = await desk.update(STAFF, made.id, DiscountChanges(product_ids=[7, 8]))

    assert (renamed.title, renamed.value.amount, renamed.product_ids) == ("Eleven", 1100, {7})
    assert widened.product_ids == {7, 8} and widened.title == "Eleven"
    assert store.looked_up == [({7}, frozenset()), ({7, 8}, frozenset())]


async def test_a_none_id_is_reported_as_not_found_at_its_index() -> None:
    draft = replace(TEN, scope=DiscountScope.PRODUCTS, product_ids=[7, None])

    with pytest.raises(Rejected) as refused:
        await admin(FakeDiscountStore(products=[7])).create(STAFF, draft)

    assert codes(refused) == [(("productIds", "1"), UserErrorCode.PRODUCT_NOT_FOUND.value)]


async def test_a_list_of_nothing_but_bad_ids_is_refused_not_stored_empty() -> None:
    store = FakeDiscountStore(categories=[3])
    draft = replace(TEN, scope=DiscountScope.CATEGORIES, category_ids=[None, None])

    with pytest.raises(Rejected) as refused:
        await admin(store).create(STAFF, draft)

    assert codes(refused) == [
        (("categoryIds", "0"), UserErrorCode.CATEGORY_NOT_FOUND.value),
        (("categoryIds", "1"), UserErrorCode.CATEGORY_NOT_FOUND.value),
    ]
    assert store.rows == {}
