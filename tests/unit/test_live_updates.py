"""The live feed's bookkeeping: who an event wakes, and how far a listener may fall behind."""

from __future__ import annotations

import asyncio

import pytest

from domain.live_updates import (
    CART_CHANGED,
    ConnectionQuota,
    LiveFeed,
    SlowConsumer,
    event_keys,
)


def test_events_name_the_keys_of_what_they_changed() -> None:
    assert event_keys("OrderPaid", {"order": "abc", "payment": None}) == ("order:abc",)
    assert event_keys("StockChanged", {"variant": 7, "available": 0}) == ("variant:7",)
    assert event_keys("VariantCreated", {"variant": 7, "product": 3}) == ("variant:7", "product:3")
    assert event_keys(CART_CHANGED, {"cart": "c1"}) == ("cart:c1",)
    # A payload without its ids (or with the wrong kinds) wakes nobody.
    assert event_keys("OrderPaid", {"order": 5}) == ()
    assert event_keys("StockChanged", {"variant": True}) == ()


async def test_a_listener_hears_an_event_once_however_many_of_its_keys_it_names() -> None:
    feed = LiveFeed(queue_size=4)
    listener = feed.listen(["variant:1", "product:9"], on_overflow=lambda: None)
    other = feed.listen(["variant:2"], on_overflow=lambda: None)

    woken = feed.dispatch(("variant:1", "product:9"), "VariantUpdated")

    assert woken == 1
    assert await listener.next() == "VariantUpdated"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await other.next()


async def test_watching_new_keys_forgets_the_old_and_dropping_forgets_all() -> None:
    started: list[int] = []
    feed = LiveFeed(queue_size=4, on_first_listener=lambda: started.append(1))
    listener = feed.listen(["cart:a", "variant:1"], on_overflow=lambda: None)
    feed.watch(listener, ["cart:a", "variant:2"])

    assert feed.dispatch(("variant:1",), "StockChanged") == 0
    assert feed.dispatch(("variant:2",), "StockChanged") == 1
    feed.drop(listener)
    assert feed.dispatch(("cart:a",), CART_CHANGED) == 0
    assert feed.listeners == 0
    assert started == [1]


async def test_one_event_past_the_queue_drops_the_listener_once() -> None:
    overflowed: list[int] = []
    feed = LiveFeed(queue_size=2)
    listener = feed.listen(["variant:1"], on_overflow=lambda: overflowed.append(1))

    for _ in range(5):
        feed.dispatch(("variant:1",), "StockChanged")

    assert overflowed == [1]
    with pytest.raises(SlowConsumer):
        await listener.next()  # nothing buffered for it any more


def test_a_client_holds_at_most_its_connections() -> None:
    quota = ConnectionQuota(per_client=2)
    assert quota.take("ip:1") and quota.take("ip:1")
    assert not quota.take("ip:1")
    assert quota.take("ip:2")
    quota.give_back("ip:1")
    assert quota.take("ip:1")
    quota.give_back("ip:1")
    quota.give_back("ip:1")
    assert quota.open("ip:1") == 0
