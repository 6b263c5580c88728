"""The one revenue parser (app/revenue.py): what the event endpoint stores and TikTok is sent."""

from __future__ import annotations

import pytest

from app.revenue import RevenueError, parse_currency, parse_revenue


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("9.990", "9.990"),  # as sent, trailing zero included
        (9.99, "9.99"),  # a JSON number reads back as the decimal written
        (12, "12"),
        ("1e3", "1000"),
        (" -4.50 ", "-4.50"),  # a refund
        ("-0", "-0"),
        ("999999999999999", "999999999999999"),  # 15 digits before the point
        ("1e-38", "0." + "0" * 37 + "1"),  # 40 characters
    ],
)
def test_revenue_is_the_plain_decimal_that_was_sent(value: object, expected: str) -> None:
    assert parse_revenue({"af_revenue": value}) == (expected, "USD")


def test_currency_is_upper_cased_and_defaults_to_usd() -> None:
    assert parse_revenue({"af_revenue": "1", "af_currency": " eur "}) == ("1", "EUR")
    assert parse_revenue({"af_revenue": "1", "af_currency": None}) == ("1", "USD")


def test_no_revenue_is_none_and_a_currency_alone_is_read_on_its_own() -> None:
    assert parse_revenue({}) is None
    assert parse_revenue({"af_currency": "jpy"}) is None
    assert parse_currency({"af_currency": "jpy"}) == "JPY"
    assert parse_currency({"af_revenue": "1"}) is None


NUMBER = "af_revenue must be a decimal number such as 9.99"
FINITE = "af_revenue must be a finite number"
RANGE = "af_revenue is out of range"
CURRENCY = "af_currency must be an ISO 4217 code such as USD"


@pytest.mark.parametrize(
    ("event_value", "field", "message"),
    [
        ({"af_revenue": "9,99"}, "af_revenue", NUMBER),
        ({"af_revenue": "abc"}, "af_revenue", NUMBER),
        ({"af_revenue": ""}, "af_revenue", NUMBER),
        ({"af_revenue": True}, "af_revenue", NUMBER),
        ({"af_revenue": [1]}, "af_revenue", NUMBER),
        ({"af_revenue": {"amount": 1}}, "af_revenue", NUMBER),
        ({"af_revenue": "NaN"}, "af_revenue", FINITE),
        ({"af_revenue": "-Infinity"}, "af_revenue", FINITE),
        ({"af_revenue": float("inf")}, "af_revenue", FINITE),
        ({"af_revenue": "1e15"}, "af_revenue", RANGE),
        ({"af_revenue": "1e999999999"}, "af_revenue", RANGE),
        ({"af_revenue": "1e-999999999"}, "af_revenue", RANGE),
        ({"af_revenue": "1e-39"}, "af_revenue", RANGE),
        ({"af_revenue": "1", "af_currency": "US"}, "af_currency", CURRENCY),
        ({"af_revenue": "1", "af_currency": "U$D"}, "af_currency", CURRENCY),
        ({"af_revenue": "1", "af_currency": "US$"}, "af_currency", CURRENCY),
        ({"af_revenue": "1", "af_currency": "ÉUR"}, "af_currency", CURRENCY),
        ({"af_currency": 840}, "af_currency", CURRENCY),  # refused even without revenue
        ({"af_revenue": "abc", "af_currency": "US"}, "af_currency", CURRENCY),  # currency first
    ],
)
def test_what_cannot_be_read_is_refused_naming_its_field(
    event_value: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(RevenueError) as refused:
        parse_revenue(event_value)
    assert (refused.value.field, refused.value.message, str(refused.value)) == (
        field,
        message,
        message,
    )
    assert isinstance(refused.value, ValueError)
