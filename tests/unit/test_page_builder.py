"""Page.from_rows, the one page builder, and the cursor key helpers every list shares."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from domain.errors import ErrorCode, InvalidInput
from domain.pagination import Page, invalid_cursor
from persistence.cursor_keys import cursor_id, cursor_time, time_key

ROOT = Path(__file__).resolve().parents[2]


def letters_page(rows: str, first: int, after: str | None) -> Page[str]:
    return Page.from_rows(
        list(rows), first=first, after=after, cursor_of=lambda c: f"c-{c}", node_of=str.upper
    )


def test_a_query_that_found_one_row_more_than_asked_has_a_next_page() -> None:
    page = letters_page("abc", first=2, after=None)
    assert [(e.cursor, e.node) for e in page.edges] == [("c-a", "A"), ("c-b", "B")]
    assert page.has_next_page and not page.has_previous_page
    assert (page.start_cursor, page.end_cursor) == ("c-a", "c-b")


@pytest.mark.parametrize("rows", ["", "a", "ab"])
def test_no_more_rows_than_asked_is_the_last_page(rows: str) -> None:
    page = letters_page(rows, first=2, after="c-x")
    assert [e.node for e in page.edges] == list(rows.upper())
    assert not page.has_next_page
    assert page.has_previous_page  # it came after a cursor


def test_first_zero_is_an_empty_page_that_still_says_whether_rows_follow() -> None:
    page = letters_page("a", first=0, after=None)
    assert page.edges == [] and page.has_next_page
    assert (page.start_cursor, page.end_cursor) == (None, None)


def test_nodes_default_to_the_rows_themselves() -> None:
    page = Page.from_rows([3, 1, 2], first=2, after=None, cursor_of=str)
    assert [(e.cursor, e.node) for e in page.edges] == [("3", 3), ("1", 1)]


def test_time_and_id_keys_round_trip_and_refuse_what_we_never_wrote() -> None:
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert cursor_time(time_key(moment)) == moment
    assert cursor_id(41) == 41
    for bad_time in ("yesterday", 5, None):
        with pytest.raises(InvalidInput) as caught:
            cursor_time(bad_time)
        assert caught.value.code is ErrorCode.INVALID_CURSOR
    for bad_id in ("41", True, 4.5, None):
        with pytest.raises(InvalidInput) as caught:
            cursor_id(bad_id)
        assert caught.value.code is ErrorCode.INVALID_CURSOR


def test_the_invalid_cursor_error_names_the_after_argument() -> None:
    error = invalid_cursor()
    assert (error.code, error.field) == (ErrorCode.INVALID_CURSOR, "after")


def test_persistence_builds_pages_only_through_from_rows() -> None:
    offenders = []
    for path in (ROOT / "persistence").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Page"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
