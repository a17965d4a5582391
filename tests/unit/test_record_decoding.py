"""Cached record bytes decode once per worker: the same records, never a shared list."""

from __future__ import annotations

import orjson

from persistence.catalog.records import decode_image_list, decode_variant_list

VARIANTS = orjson.dumps(
    [
        {
            "id": 7,
            "product_id": 3,
            "sku": "SKU-7",
            "title": "Red / S",
            "options": [{"name": "Color", "value": "Red"}],
            "price": 1999,
            "compare_at_price": None,
            "currency_code": "USD",
            "position": 1,
        }
    ]
)


def test_the_same_bytes_give_equal_records_in_a_list_of_their_own() -> None:
    first = decode_variant_list(VARIANTS)
    first.append(first[0])  # a caller's list is its own
    second = decode_variant_list(VARIANTS)
    assert [v.sku for v in second] == ["SKU-7"]
    assert second[0].options[0].value == "Red"


def test_changed_bytes_are_decoded_afresh() -> None:
    assert decode_variant_list(VARIANTS)[0].price == 1999
    repriced = VARIANTS.replace(b'"price":1999', b'"price":2499')
    assert decode_variant_list(repriced)[0].price == 2499
    images = orjson.dumps([{"id": 1, "product_id": 3, "url": "u", "alt": None, "position": 0}])
    first = decode_image_list(images)
    first.clear()
    assert [i.url for i in decode_image_list(images)] == ["u"]
