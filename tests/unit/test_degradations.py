"""One failure that empties many fields is logged once, whatever the exception's class."""

from __future__ import annotations

import logging

import pytest

from schema.degradation import Degradations, DegradedReason


class ComparedError(Exception):
    """Like some driver errors: defines __eq__, so it is not hashable."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ComparedError)


def test_one_failure_in_many_fields_is_one_log_line_and_one_error_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    degradations = Degradations()
    shared, other = ComparedError("batch failed"), ComparedError("another")

    with caplog.at_level(logging.ERROR, logger="commerce.degraded"):
        degradations.add(shared, DegradedReason.REVIEWS_UNAVAILABLE, [("a", 0, "reviews")])
        degradations.add(shared, DegradedReason.REVIEWS_UNAVAILABLE, [("a", 1, "reviews")])
        degradations.add(other, DegradedReason.IMAGES_UNAVAILABLE, [("a", 0, "images")])

    ids = [entry["errorId"] for entry in degradations.entries]
    assert [entry["path"] for entry in degradations.entries] == [
        ["a", 0, "reviews"],
        ["a", 1, "reviews"],
        ["a", 0, "images"],
    ]
    assert ids[0] == ids[1] != ids[2]
    assert [r.getMessage().split()[1] for r in caplog.records] == [ids[0] + ":", ids[2] + ":"]
