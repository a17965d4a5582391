"""The app on a real three-master Redis Cluster: its keys spread over the masters, a
cart's keys keep to one slot, a cart's slot can move between masters under a live app,
and the cluster refuses cross-slot work (which is why the suites also run there).

These start the session's private cluster in any run (a couple of seconds); with
TEST_REDIS_CLUSTER=1 the whole cart, rate-limit, events and checkout suites run on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisClusterException, ResponseError

from persistence.db import Database
from schema.global_id import decode_gid, encode_gid
from settings import Settings
from tests.client import AppClient, customer_token, running_app
from tests.conftest import cluster_client
from tests.factories import CatalogFactory, MadeProduct

CREATE = """mutation($lines: [CartLineInput!]!) {
  cartCreate(input: {lines: $lines}) { cart { id totalQuantity } userErrors { code } } }"""
ADD = """mutation($id: ID!, $lines: [CartLineInput!]!) {
  cartLinesAdd(input: {cartId: $id, lines: $lines}) {
    cart { totalQuantity } userErrors { code } } }"""
BUYER = """mutation($id: ID!, $buyer: CartBuyerIdentityInput!) {
  cartBuyerIdentityUpdate(input: {cartId: $id, buyerIdentity: $buyer}) {
    cart { id totalQuantity } userErrors { code } } }"""
READ = "query($id: ID!) { cart(id: $id) { totalQuantity lines { quantity } } }"


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[RedisCluster]:
    client = cluster_client(redis_cluster_url)
    await client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    yield client
    await client.aclose()


@pytest.fixture
async def on_cluster(
    settings: Settings, redis_cluster_url: str, cluster: RedisCluster, clean: None
) -> AsyncIterator[AppClient]:
    # model_copy skips validation: the URL goes in as the SecretStr the field holds.
    cluster_settings = settings.model_copy(update={"redis_url": SecretStr(redis_cluster_url)})
    async with running_app(cluster_settings) as client:
        yield client


@pytest.fixture
async def mug(db: Database, clean: None) -> MadeProduct:
    return await CatalogFactory(db).product("Mug", prices=[900], stock=[1000])


def _line(made: MadeProduct, quantity: int = 1) -> list[dict[str, Any]]:
    return [{"variantId": encode_gid("ProductVariant", made.variant_ids[0]), "quantity": quantity}]


async def _new_cart(client: AppClient, made: MadeProduct, token: str | None = None) -> str:
    created = (await client.query(CREATE, {"lines": _line(made)}, token=token)).data["cartCreate"]
    assert created["userErrors"] == []
    cart_id: str = created["cart"]["id"]
    return cart_id


def _key(cart_gid: str) -> str:
    return f"cart:{decode_gid(cart_gid)[1]}"


async def _masters(cluster: RedisCluster) -> dict[str, Redis]:
    """Each master by its node id, as a plain client (no redirections followed)."""
    masters: dict[str, Redis] = {}
    for node in cluster.get_primaries():
        plain = Redis(host=node.host, port=node.port)
        node_id = (await plain.execute_command("CLUSTER", "MYID")).decode()
        masters[node_id] = plain
    return masters


async def _keys_in(master: Redis, slot: int) -> int:
    """How many keys of `slot` this master holds (asked without a redirection)."""
    return int(await master.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))


async def test_the_app_spreads_carts_over_the_masters_and_a_carts_keys_share_its_slot(
    on_cluster: AppClient, cluster: RedisCluster, mug: MadeProduct
) -> None:
    assert isinstance(on_cluster.container.redis, RedisCluster)
    carts = [await _new_cart(on_cluster, mug) for _ in range(12)]
    for cart in carts:
        added = (await on_cluster.query(ADD, {"id": cart, "lines": _line(mug)})).data
        assert added["cartLinesAdd"]["userErrors"] == []

    masters = await _masters(cluster)
    try:
        holding = [node for node, plain in masters.items() if await plain.dbsize()]
        write_ids = [key async for key in cluster.scan_iter(match=f"{{{_key(carts[0])}}}:write:*")]
    finally:
        for plain in masters.values():
            await plain.aclose()
    assert len(holding) >= 2  # 12 carts at random slots: all on one of 3 masters is 3^-11
    assert len(write_ids) == 1  # the add's write id, still in its minute
    cart_slot = cluster.keyslot(_key(carts[0]))
    assert cluster.keyslot(write_ids[0]) == cart_slot


async def test_a_customers_carts_merge_across_slots(
    on_cluster: AppClient, cluster: RedisCluster, mug: MadeProduct
) -> None:
    token = await customer_token(on_cluster, "ada@example.com")
    older = await _new_cart(on_cluster, mug, token)
    guest = await _new_cart(on_cluster, mug)
    while cluster.keyslot(_key(guest)) == cluster.keyslot(_key(older)):  # 1 in 16,384
        guest = await _new_cart(on_cluster, mug)

    merged = await on_cluster.query(BUYER, {"id": guest, "buyer": {"customerAccessToken": token}})

    assert merged.data["cartBuyerIdentityUpdate"]["userErrors"] == []
    assert merged.data["cartBuyerIdentityUpdate"]["cart"]["totalQuantity"] == 2
    assert not await cluster.exists(_key(older))
    customer_id = (await cluster.hget(_key(guest), "owner") or b"").decode()
    assert await cluster.get(f"customer-cart:{customer_id}") == decode_gid(guest)[1].encode()


async def test_a_cart_keeps_working_while_its_slot_moves_to_another_master(
    on_cluster: AppClient, cluster: RedisCluster, mug: MadeProduct
) -> None:
    cart = await _new_cart(on_cluster, mug)
    key = _key(cart)
    slot = cluster.keyslot(key)
    masters = await _masters(cluster)
    try:
        [source_id] = [n for n, p in masters.items() if await _keys_in(p, slot)]
        target_id = next(n for n in masters if n != source_id)
        source, target = masters[source_id], masters[target_id]
        target_node = target.connection_pool.connection_kwargs

        # Given the slot half-way from one master to another, the cart's key moved
        await target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        await source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        await source.execute_command(
            "MIGRATE", target_node["host"], target_node["port"], "", 0, 5000, "KEYS", key
        )
        assert not await _keys_in(source, slot)

        # the app still reads it (the old master answers ASK: the client asks the new one)
        read = (await on_cluster.query(READ, {"id": cart})).data["cart"]
        assert read["totalQuantity"] == 1

        # and a write that meets the migration (TRYAGAIN) lands once the slot is settled
        write = asyncio.ensure_future(on_cluster.query(ADD, {"id": cart, "lines": _line(mug)}))
        await asyncio.sleep(0.05)
        for plain in masters.values():  # the slot belongs to the new master: MOVED
            await plain.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
        added = (await write).data["cartLinesAdd"]
        assert added["userErrors"] == []
        assert added["cart"]["totalQuantity"] == 2

        # then every read and write follows the new slot map
        again = (await on_cluster.query(ADD, {"id": cart, "lines": _line(mug, 3)})).data
        assert again["cartLinesAdd"]["cart"]["totalQuantity"] == 5
        assert (await on_cluster.query(READ, {"id": cart})).data["cart"]["lines"] == [
            {"quantity": 5}
        ]
        assert await target.exists(key)
        assert not await _keys_in(source, slot)
    finally:
        for plain in masters.values():
            await plain.aclose()


async def test_the_cluster_refuses_what_a_single_redis_allows(cluster: RedisCluster) -> None:
    # What the old cart scripts did: a cart and a customer's pointer in one script, and
    # a pointer key built inside a script. A suite on the cluster fails on either, in
    # the client (which knows the slots) or, sent past it, in Redis itself.
    cart, pointer = "cart:one", "customer-cart:1"
    assert cluster.keyslot(cart) != cluster.keyslot(pointer)
    both = "return redis.call('EXISTS', KEYS[1], KEYS[2])"
    with pytest.raises(RedisClusterException, match="same key slot"):
        await cluster.register_script(both)(keys=[cart, pointer])
    node = cluster.get_node_from_key(cart)
    plain = Redis(host=node.host, port=node.port)
    try:
        with pytest.raises(ResponseError, match="don't hash to the same slot"):
            await plain.eval(both, 2, cart, pointer)
        with pytest.raises(ResponseError, match=r"non local key|hash to the same slot"):
            await plain.eval("return redis.call('GET', 'customer-cart:' .. ARGV[1])", 1, cart, "1")
    finally:
        await plain.aclose()
