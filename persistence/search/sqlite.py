"""Product search for the embedded mode (SQLite): the same API, simpler matching.

Every word must appear, as a substring (so `head` finds "headphones"), in the title,
brand, category names, description or attributes (their JSON text, names included); a
word of five letters or more also matches one edit away (a letter missing, extra,
replaced or two swapped: `televsion`), spelled as LIKE patterns. RELEVANCE adds per
word: 8 in the title, 4 in brand or category names, 2 in description or attributes, 1
for a near miss. Facets are the shared SQL aggregates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Integer
from sqlalchemy.types import TypeEngine

from persistence.search.sql import Match, SqlSearchIndex, json_list

FUZZY_MIN_LENGTH = 5


class SqliteSearchIndex(SqlSearchIndex):
    engine = "sqlite"

    def match(self, words: list[str], text_: str) -> Match:
        conditions, scores, params = [], [], {}
        for i, word in enumerate(words):
            exact = f"w{i}"
            params[exact] = f"%{word}%"
            near = []
            for j, pattern in enumerate(one_edit_patterns(word)):
                params[f"w{i}_{j}"] = f"%{pattern}%"
                near.append(f"d.search_text LIKE :w{i}_{j}")
            near_any = " OR ".join(near) or "0"
            conditions.append(
                f"(d.search_text LIKE :{exact} OR d.description LIKE :{exact} "
                f"OR d.attributes LIKE :{exact} OR {near_any})"
            )
            scores.append(
                f"(CASE WHEN d.title LIKE :{exact} THEN 8 WHEN d.search_text LIKE :{exact} "
                f"THEN 4 WHEN d.description LIKE :{exact} OR d.attributes LIKE :{exact} THEN 2 "
                "ELSE 1 END)"
            )
        return Match(condition=" AND ".join(conditions), score=" + ".join(scores), params=params)

    def in_list(self, expression: str, param: str) -> str:
        return f"{expression} IN (SELECT value FROM json_each(:{param}))"

    def list_value(self, values: Sequence[str]) -> Any:
        return json_list(values)

    def has_category(self, param: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each(d.category_slugs) AS s WHERE s.value = :{param})"

    def category_elements(self) -> tuple[str, str, str]:
        return (
            "json_each(m.category_slugs) AS c",
            "c.value",
            "json_extract(m.category_names, '$[' || c.key || ']')",
        )

    def attribute_elements(self, source: str) -> tuple[str, str, str]:
        return (
            f"json_each({source}.attributes) AS a",
            "json_extract(a.value, '$[0]')",
            "json_extract(a.value, '$[1]')",
        )

    def score_type(self) -> TypeEngine[Any]:
        return Integer()

    def score_key(self, value: Any) -> Any:
        return int(value)

    def score_bind(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("score")
        return value


def one_edit_patterns(word: str) -> list[str]:
    """LIKE patterns (`_` is any one letter) for the words one edit away from `word`."""
    if len(word) < FUZZY_MIN_LENGTH:
        return []
    patterns: set[str] = set()
    for i in range(len(word)):
        patterns.add(word[:i] + word[i + 1 :])  # the shopper typed a letter too many
        patterns.add(word[:i] + "_" + word[i + 1 :])  # ... a wrong letter
        patterns.add(word[:i] + "_" + word[i:])  # ... left one out
        if i + 1 < len(word):
            patterns.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])  # ... swapped two
    patterns.discard(word)
    return sorted(patterns)
