"""REDIS_URL naming a Redis Cluster: what is accepted, and what is refused at start."""

from __future__ import annotations

from typing import Any

import pytest

from settings import Settings, redis_cluster_nodes


def test_redis_urls_that_name_a_cluster() -> None:
    listed = Settings(redis_url="redis+cluster://app:s%3Acret@10.0.0.1:7000,10.0.0.2:7001")
    assert listed.redis_cluster_mode
    start = redis_cluster_nodes(listed.redis_url.get_secret_value())  # type: ignore[union-attr]
    assert start.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (start.username, start.password, start.tls) == ("app", "s:cret", False)
    flagged = Settings(redis_url="rediss://10.0.0.1:6380/0", redis_cluster=True)
    assert flagged.redis_cluster_mode
    assert redis_cluster_nodes("rediss://10.0.0.1:6380/0").tls
    assert not Settings(redis_url="redis://10.0.0.1:6379/3").redis_cluster_mode


@pytest.mark.parametrize(
    ("environment", "problem"),
    [
        ({"redis_url": "redis+cluster://:hunter2@10.0.0.1:7000/3"}, "only database 0"),
        ({"redis_url": "redis+cluster://:hunter2@10.0.0.1"}, "host:port"),
        ({"redis_url": "redis+cluster://:hunter2@10.0.0.1:99999"}, "host:port"),
        ({"redis_url": "redis+cluster://:hunter2@10.0.0.1:7000,"}, "host:port"),
        ({"redis_url": "unix:///tmp/hunter2.sock", "redis_cluster": True}, "must start"),
        ({"redis_cluster": True}, "needs REDIS_URL"),
    ],
)
def test_a_cluster_url_that_cannot_work_is_refused_at_start(
    environment: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem) as refused:
        Settings(**environment)
    assert "hunter2" not in str(refused.value)
