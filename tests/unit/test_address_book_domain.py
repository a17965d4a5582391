"""Address book rules without I/O: checks before storage, one answer for every id that is
not yours, the limit, the default, and carts started from the default address."""

from __future__ import annotations

import pytest

from domain.address_book import AddressBook
from domain.addresses import MailingAddress
from domain.carts import CartLine, Carts
from domain.errors import Rejected, UserErrorCode
from tests.fakes.addresses import FakeAddressBookStore
from tests.fakes.carts import FakeCartStore, FakeMerchandise

HOME = MailingAddress("Ann", "Lee", "1 Main St", "", "Berlin", "", "10115", "de", "")
WORK = MailingAddress("Ann", "Lee", "9 Office Park", "", "Hamburg", "", "20095", "DE", "")
ANN, BOB = 1, 2


def codes(rejected: pytest.ExceptionInfo[Rejected]) -> list[tuple[UserErrorCode, tuple[str, ...]]]:
    return [(e.code, e.field) for e in rejected.value.errors]


async def test_an_address_is_checked_before_anything_is_stored() -> None:
    store = FakeAddressBookStore()
    book = AddressBook(store)

    with pytest.raises(Rejected) as refused:
        await book.add(ANN, MailingAddress("", "Lee", "1", "", "B", "", "1", "XYZ", ""), False)

    assert codes(refused) == [
        (UserErrorCode.BLANK, ("address", "firstName")),
        (UserErrorCode.INVALID_COUNTRY_CODE, ("address", "countryCode")),
    ]
    assert store.rows == {}
    assert (await book.add(ANN, HOME, False)).address.country_code == "DE"


async def test_ids_that_are_not_yours_all_answer_address_not_found() -> None:
    book = AddressBook(FakeAddressBookStore())
    anns = await book.add(ANN, HOME, False)
    not_found = [(UserErrorCode.ADDRESS_NOT_FOUND, ("id",))]

    for address_id in (None, anns.id + 1, anns.id):
        for call in (
            book.update(BOB, address_id, WORK, True),
            book.delete(BOB, address_id),
            book.set_default(BOB, address_id),
        ):
            with pytest.raises(Rejected) as refused:
                await call
            assert codes(refused) == not_found

    assert await book.by_ids(ANN, [anns.id]) == {anns.id: anns}


async def test_the_limit_refuses_past_it() -> None:
    book = AddressBook(FakeAddressBookStore(), limit=2)
    await book.add(ANN, HOME, False)
    await book.add(ANN, WORK, False)

    with pytest.raises(Rejected) as refused:
        await book.add(ANN, HOME, True)

    assert codes(refused) == [(UserErrorCode.ADDRESS_LIMIT_REACHED, ("address",))]
    assert (await book.add(BOB, HOME, False)).is_default  # a limit per customer


async def test_the_default_is_the_first_then_the_chosen_then_the_newest_left() -> None:
    book = AddressBook(FakeAddressBookStore())
    home = await book.add(ANN, HOME, False)
    work = await book.add(ANN, WORK, False)
    assert (await book.default_address(ANN)) == home.address

    await book.set_default(ANN, work.id)
    assert (await book.default(ANN)) == (await book.by_ids(ANN, [work.id]))[work.id]
    await book.delete(ANN, work.id)
    assert (await book.default(ANN)) == (await book.by_ids(ANN, [home.id]))[home.id]
    await book.delete(ANN, home.id)
    assert await book.default_address(ANN) is None


async def test_a_customers_new_cart_starts_with_their_default_address() -> None:
    book = AddressBook(FakeAddressBookStore())
    await book.add(ANN, HOME, False)
    store = FakeCartStore()
    carts = Carts(store, FakeMerchandise(), book)

    anns = await carts.create([], None, None, ANN)
    bobs = await carts.create([], None, None, BOB)
    guest = await carts.create([], None, None, None)
    await carts.prefill_address(guest, ANN)  # not Ann's cart: her address stays hers

    assert store.carts[anns].shipping_address == (await book.default_address(ANN))
    assert store.carts[bobs].shipping_address is None
    assert store.carts[guest].shipping_address is None


async def test_a_cart_with_an_address_keeps_it() -> None:
    book = AddressBook(FakeAddressBookStore())
    await book.add(ANN, HOME, False)
    store = FakeCartStore()
    carts = Carts(store, FakeMerchandise(), book)
    cart_id = await store.create(ANN, None, None, [CartLine(1, 1)])
    await store.set_address(cart_id, WORK)

    await carts.prefill_address(cart_id, ANN)

    assert store.carts[cart_id].shipping_address == WORK
