"""The one name for "a Redis client of ours": a single server or a Redis Cluster.

Every store takes a `RedisClient`. Both kinds run the same commands; what differs is
that on a cluster every command, script, MULTI/EXEC or MGET must keep to one hash slot,
which is why the keys that travel together carry a hash tag (`{...}`) in their names.
"""

from __future__ import annotations

from redis.asyncio import Redis, RedisCluster

RedisClient = Redis | RedisCluster


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)
