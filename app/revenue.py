"""The revenue of an in-app event: `af_revenue` and `af_currency` of its `event_value` (pure).

One parser for both readers: the event endpoint stores what it returns and refuses what it
raises, and the TikTok payload is built from the same answer, so nothing stored can fail when
its postback is built.

- `af_revenue` is a JSON number or a string holding a decimal; it is kept as a plain decimal
  string as sent (`9.990` stays `9.990`, `1e3` is `1000`), up to 15 digits before the point.
  Negative amounts (refunds) are allowed; NaN and infinities are not.
- `af_currency` is an ISO 4217 code, any case, stored upper-case. It defaults to USD when
  `af_revenue` comes alone: AppsFlyer's documented fallback, so migrating marketers see the same
  number in TikTok.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

REVENUE = "af_revenue"
CURRENCY = "af_currency"
DEFAULT_CURRENCY = "USD"
# Revenue up to 10^15 - 1 (more than any purchase) and 40 characters as a plain decimal.
MAX_DIGITS_BEFORE_POINT = 15
MAX_CHARS = 40
_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")


class RevenueError(ValueError):
    """A revenue or currency that cannot be read; `field` is its key in `event_value`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_currency(event_value: Mapping[str, object]) -> str | None:
    """The event's `af_currency` upper-cased, or None when it has none."""
    currency = event_value.get(CURRENCY)
    if currency is None:
        return None
    if not isinstance(currency, str) or not _CURRENCY_RE.fullmatch(currency.strip()):
        raise RevenueError(CURRENCY, "af_currency must be an ISO 4217 code such as USD")
    return currency.strip().upper()


def parse_revenue(event_value: Mapping[str, object]) -> tuple[str, str] | None:
    """(amount as a plain decimal string, currency) of an event, or None when it has no
    `af_revenue`. A bad `af_currency` is refused even then, and before the amount is read."""
    currency = parse_currency(event_value)
    revenue = event_value.get(REVENUE)
    if revenue is None:
        return None
    # JSON numbers arrive as int or float; a float's repr is the shortest text that reads back
    # as it, which is the decimal the client wrote for any amount of up to 15 digits.
    if isinstance(revenue, bool) or not isinstance(revenue, str | int | float):
        raise RevenueError(REVENUE, "af_revenue must be a decimal number such as 9.99")
    try:
        amount = Decimal(str(revenue).strip())
    except InvalidOperation:
        raise RevenueError(REVENUE, "af_revenue must be a decimal number such as 9.99") from None
    # Decimal happily parses "NaN" and "Infinity"; JSON has no such numbers.
    if not amount.is_finite():
        raise RevenueError(REVENUE, "af_revenue must be a finite number")
    # Checked on the exponent before writing the digits out: "1e999999999" is a short string
    # and a billion characters as a plain decimal.
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if (
        amount.adjusted() >= MAX_DIGITS_BEFORE_POINT
        or exponent < -MAX_CHARS
        or len(text := format(amount, "f")) > MAX_CHARS
    ):
        raise RevenueError(REVENUE, "af_revenue is out of range")
    return text, currency or DEFAULT_CURRENCY
