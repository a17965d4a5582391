"""build_products' relations are awaited in turn, with gather's return_exceptions
meaning: values and exceptions in order, a cancellation raised, nothing left pending."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest

from dataloaders.catalog import settled


async def value(v: object, delay: float = 0) -> object:
    await asyncio.sleep(delay)
    return v


async def failing() -> object:
    await asyncio.sleep(0)
    raise LookupError("a batch failed")


async def test_values_and_exceptions_come_back_in_order() -> None:
    results = await settled(value(1), None, failing(), value("x"))

    assert results[0] == 1 and results[1] is None and results[3] == "x"
    assert isinstance(results[2], LookupError)


async def test_a_cancellation_is_raised_and_the_rest_still_runs_to_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    finished: list[str] = []

    async def later(name: str) -> str:
        await asyncio.sleep(0.05)
        finished.append(name)
        raise LookupError(name)  # retrieved, so never "exception was never retrieved"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine ... was never awaited"
        task = asyncio.ensure_future(settled(value(1, delay=1), later("images"), None))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        gc.collect()

    assert finished == ["images"]  # awaited on its own after the cancellation
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
