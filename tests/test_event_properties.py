"""The pure parts of the partner rules: event properties, mapping conditions, the catalogue and
the desktop rule's search ranges."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.attribution import NEAR_MISS_SECONDS, AttributionSettings, candidate_ranges
from app.fields import FieldError
from app.postbacks import catalogue, conditions
from app.postbacks.tiktok import MAX_CONTENTS, TEXT_LIMITS, event_properties
from app.vocabulary import platform_family

T = 1_763_719_200.0


# --- properties -------------------------------------------------------------------------------


def test_a_single_content_and_the_text_properties() -> None:
    properties, flags = event_properties(
        {
            "af_content_id": 42,
            "af_quantity": "3",
            "af_price": "1.50",
            "af_search_string": " shoes ",
            "af_order_id": "o-1",
        },
        include_revenue=False,
    )
    assert properties == {
        "contents": [{"content_id": "42", "quantity": 3, "price": 1.5}],
        "query": "shoes",
        "order_id": "o-1",
    }
    assert flags == ()


def test_revenue_only_when_included() -> None:
    value = {"af_revenue": "10.00", "af_currency": "eur"}
    assert event_properties(value, include_revenue=True)[0] == {"value": 10, "currency": "EUR"}
    assert event_properties(value, include_revenue=False)[0] == {}


def test_lists_are_read_by_position_and_capped() -> None:
    ids = [f"sku-{i}" for i in range(MAX_CONTENTS + 5)]
    properties, flags = event_properties(
        {"af_content_id": ids, "af_quantity": 1}, include_revenue=False
    )
    contents: Any = properties["contents"]
    assert len(contents) == MAX_CONTENTS
    assert contents[-1] == {"content_id": f"sku-{MAX_CONTENTS - 1}", "quantity": 1}
    assert flags == ("contents_truncated",)


def test_unreadable_values_are_left_out_and_flagged() -> None:
    properties, flags = event_properties(
        {
            "af_content_id": "sku",
            "af_quantity": 1.5,
            "af_price": "cheap",
            "af_description": {"nested": True},
        },
        include_revenue=False,
    )
    assert properties == {"contents": [{"content_id": "sku"}]}
    assert flags == ("property_invalid",)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "af_content_id",
                "af_quantity",
                "af_price",
                "af_content_type",
                "af_description",
                "af_order_id",
            ]
        ),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=700),
            st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=60),
        ),
    )
)
def test_properties_never_raise_and_stay_bounded(value: dict[str, Any]) -> None:
    properties, _ = event_properties(value, include_revenue=False)
    contents: Any = properties.get("contents", [])
    assert len(contents) <= MAX_CONTENTS
    for item in contents:
        assert item
        for key in ("content_id", "content_type"):
            assert len(item.get(key, "")) <= TEXT_LIMITS[key]
    for key in ("description", "order_id"):
        assert len(str(properties.get(key, ""))) <= TEXT_LIMITS[key]


# --- conditions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "expected", "actual", "met"),
    [
        (">=", 5, "5.00", True),
        (">=", 5, 4.99, False),
        (">", 5, None, False),
        ("<", 5, "cheap", False),
        ("<=", 0, -1, True),
        ("==", 5, "5", True),
        ("==", "sub", "sub", True),
        ("==", "sub", "Sub", False),
        ("!=", "sub", None, True),
        ("!=", 5, "6", True),
        ("contains", "pro", "pro_yearly", True),
        ("contains", "pro", 12, False),
        ("==", "true", True, False),
    ],
)
def test_a_condition_holds(op: str, expected: Any, actual: Any, met: bool) -> None:
    assert conditions.holds(op, expected, actual) is met


def test_evaluate_records_each_condition() -> None:
    rules = [{"param": "af_revenue", "op": ">=", "value": 5}]
    assert conditions.evaluate(rules, {"af_revenue": 7}) == [
        {"param": "af_revenue", "op": ">=", "value": 5, "actual": 7, "met": True}
    ]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"param": "", "op": "==", "value": 1}, "e.conditions[0].param"),
        ({"param": "a b", "op": "==", "value": 1}, "e.conditions[0].param"),
        ({"param": "x", "op": "~", "value": 1}, "e.conditions[0].op"),
        ({"param": "x", "op": ">", "value": "5"}, "e.conditions[0].value"),
        ({"param": "x", "op": ">", "value": True}, "e.conditions[0].value"),
        ({"param": "x", "op": "contains", "value": 5}, "e.conditions[0].value"),
        ({"param": "x", "op": "==", "value": None}, "e.conditions[0].value"),
        ({"param": "x", "op": "==", "value": "v" * 201}, "e.conditions[0].value"),
        ("x", "e.conditions[0]"),
    ],
)
def test_bad_conditions_name_their_field(item: Any, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        conditions.validate({"conditions": [item]}, "e")
    assert caught.value.field == field


def test_at_most_ten_conditions() -> None:
    many = [{"param": "x", "op": "==", "value": i} for i in range(11)]
    with pytest.raises(FieldError) as caught:
        conditions.validate({"conditions": many}, "e")
    assert caught.value.field == "e.conditions"


# --- catalogue and desktop ----------------------------------------------------------------------


def test_the_catalogue_resolves_each_kind() -> None:
    assert catalogue.resolve("Purchase") == catalogue.PartnerEvent(
        "Purchase", "standard", "Purchase"
    )
    pay = catalogue.resolve("Pay")
    assert pay is not None and (pay.kind, pay.tiktok_event, pay.revenue_allowed) == (
        "partner_identifier",
        "Purchase",
        True,
    )
    custom = catalogue.resolve("purchase")
    assert custom is not None and (custom.kind, custom.revenue_allowed) == ("custom", False)
    assert catalogue.resolve("two words") is None
    assert catalogue.resolve("") is None
    listed: Any = catalogue.listing()
    assert len(listed["partner_identifiers"]) == len(catalogue.PARTNER_IDENTIFIERS)


def test_desktop_installs_search_the_desktop_window() -> None:
    settings = AttributionSettings(desktop_window_minutes=30)
    clicks, impressions = candidate_ranges(settings, T, "steam")
    assert clicks == impressions
    assert (clicks.start, clicks.end) == (T - 1800 - NEAR_MISS_SECONDS, T + NEAR_MISS_SECONDS)
    phone_clicks, _ = candidate_ranges(settings, T, "android")
    assert phone_clicks.start == T - 24 * 3600 - NEAR_MISS_SECONDS


def test_platform_families() -> None:
    assert {platform_family(p) for p in ("steam", "epic", "nativepc", "battlenet")} == {"pc"}
    assert platform_family("playstation") == "playstation"
    assert platform_family("apk") == "android"
    assert platform_family(None) is None
