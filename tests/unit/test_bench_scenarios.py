"""The benchmark's request bodies and how its carts are dealt, without a server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from bench.checkout import gid_key
from bench.config import LISTING_VARIABLES, BenchError
from bench.scenarios import (
    Scenario,
    interleave,
    json_body,
    render_cart_add_script,
    render_listing_script,
)
from bench.wrk import lua_long_string


def test_a_body_is_compact_json_of_query_and_variables() -> None:
    body = json_body("query Q($id: ID!) { cart(id: $id) { id } }", {"id": "Q2FydDox"})

    assert (
        body
        == '{"query":"query Q($id: ID!) { cart(id: $id) { id } }","variables":{"id":"Q2FydDox"}}'
    )
    assert json.loads(body)["variables"] == {"id": "Q2FydDox"}


def test_the_listing_script_posts_the_one_listing_body() -> None:
    query = "query Listing($first: Int!) { products(first: $first) { edges { node { id } } } }"

    script = render_listing_script(query)

    assert 'wrk.method = "POST"' in script
    assert f"wrk.body = {lua_long_string(json_body(query, LISTING_VARIABLES))}\n" in script


def test_the_cart_add_script_spreads_its_threads_over_the_bodies() -> None:
    bodies = [json_body("m", {"k": k}) for k in range(8)]

    script = render_cart_add_script(bodies, carts=2, threads=2)

    assert "2 guest carts x 4 variants" in script
    assert "cursor = ((thread_index or 0) * 4) % #bodies" in script  # 8 bodies / 2 threads
    assert "bench_count_user_errors = true" in script  # a refused add counts as an error


@pytest.mark.parametrize(
    ("own", "extra", "merged"),
    [("ab", "xy", ["x", "a", "y", "b"]), ("a", "", ["a"]), ("", "xy", ["x", "y"])],
)
def test_interleave_spreads_the_own_variants_evenly(
    own: str, extra: str, merged: list[str]
) -> None:
    assert interleave(list(own), list(extra)) == merged


def test_a_cart_of_ten_among_thirty_extras_gets_one_own_line_in_every_four() -> None:
    own = [f"own{i}" for i in range(10)]
    extra = [f"x{i}" for i in range(30)]

    result = interleave(own, extra)

    assert [result[k] for k in range(3, 40, 4)] == own  # three extras, then one own
    assert [v for v in result if v.startswith("x")] == extra  # each list keeps its order


def test_a_global_id_gives_its_database_key() -> None:
    global_id = base64.urlsafe_b64encode(b"gid://shop/ProductVariant/4711").decode().rstrip("=")

    assert gid_key(global_id) == "4711"
    with pytest.raises(BenchError, match="not a global id"):
        gid_key(base64.urlsafe_b64encode(b"\xff\xfe").decode())  # not UTF-8


def test_a_scenario_samples_its_own_bodies_unless_told_otherwise() -> None:
    plain = Scenario("listing_screen", Path("listing.lua"), ["b1", "b2"])
    mutation = Scenario(
        "checkout",
        Path("checkout.lua"),
        [],
        warm_bodies=["read"],
        probe_bodies=["p1"],
        cold_body="cold",
    )

    assert (plain.warm_set, plain.probes, plain.cold_probe) == (["b1", "b2"], ["b1", "b2"], "b1")
    assert (mutation.warm_set, mutation.probes, mutation.cold_probe) == (["read"], ["p1"], "cold")
