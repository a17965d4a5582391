"""`MappingLoader.load_many`: the same batches and values as aiodataloader's, without a
gathered future per key."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from dataloaders.catalog import MappingLoader


class Recording:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def __call__(self, keys: list[int]) -> dict[int, str]:
        self.batches.append(keys)
        if self.fail:
            raise RuntimeError("the store is down")
        return {k: f"v{k}" for k in keys if k % 10 != 0}


async def test_calls_made_in_one_turn_share_one_batch_and_answer_in_key_order() -> None:
    fetch = Recording()
    loader: MappingLoader[int, str | None] = MappingLoader(fetch, lambda: None)
    first, second, single = await asyncio.gather(
        loader.load_many([3, 1, 10]), loader.load_many([1, 7]), loader.load(3)
    )
    assert first == ["v3", "v1", None]  # a missing key gets missing()
    assert second == ["v1", "v7"]
    assert single == "v3"
    assert fetch.batches == [[3, 1, 10, 7]]  # queued when called, deduplicated
    assert await loader.load_many([7, 3]) == ["v7", "v3"]  # memoised: no second batch
    assert fetch.batches == [[3, 1, 10, 7]]
    assert await loader.load_many([]) == []


def test_a_failed_batch_raises_once_and_leaves_no_unretrieved_future() -> None:
    # Its own loop, closed and collected here, so a future whose error nobody read is
    # reported (by the loop's exception handler) before the test ends.
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda _, context: unretrieved.append(context))

    async def load() -> str:
        loader: MappingLoader[int, str | None] = MappingLoader(Recording(fail=True), lambda: None)
        try:
            await loader.load_many([1, 2, 3])
        except RuntimeError as error:
            return str(error)
        return "nothing raised"

    try:
        raised = loop.run_until_complete(load())
        gc.collect()
    finally:
        loop.close()
    assert raised == "the store is down"
    assert unretrieved == []
