"""Conditions on an event mapping: send the mapped event only when its parameters meet them (pure).

A mapping entry may carry `conditions`, a list of `{"param", "op", "value"}` that must all hold
(AND), as AppsFlyer's partner event mapping offers. `param` is a key of the event's
`event_value` (`af_revenue`, `af_content_type`, a custom key); `op` one of:

- `==`, `!=`: a number `value` compares numerically with a number (or numeric string) sent,
  a string `value` compares exactly, as text, with what was sent (case matters);
- `>`, `>=`, `<`, `<=`: `value` must be a number; a parameter that is absent or not a number
  fails the condition (never an error: the event is stored, only its postback is held back);
- `contains`: `value` must be a string found in the parameter's text.

An absent parameter fails every condition but `!=`. `validate` is the config API's check
(`FieldError` naming the field), `evaluate` the event's: one record per condition, kept with
the event so the owner sees why a postback was or was not sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from app.fields import FieldError, as_object, listing, path

OPERATORS = ("==", "!=", ">", ">=", "<", "<=", "contains")
_ORDERING = frozenset({">", ">=", "<", "<="})
MAX_CONDITIONS = 10
MAX_VALUE_CHARS = 200
PARAM_RE = re.compile(r"[A-Za-z0-9_.\-]{1,100}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate(obj: Mapping[str, Any], parent: str) -> list[dict[str, Any]]:
    """The `conditions` of the mapping entry `obj` at `parent`, checked and normalised."""
    raw = listing(obj, "conditions", parent)
    where = path(parent, "conditions")
    if len(raw) > MAX_CONDITIONS:
        raise FieldError(where, f"must hold at most {MAX_CONDITIONS} conditions")
    out: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        field = path(where, i)
        cond = as_object(item, field)
        param = cond.get("param")
        if not isinstance(param, str) or not PARAM_RE.fullmatch(param):
            raise FieldError(
                path(field, "param"), "must be an event_value key (letters, digits, _ . -)"
            )
        op = cond.get("op")
        if op not in OPERATORS:
            raise FieldError(path(field, "op"), f"must be one of {', '.join(OPERATORS)}")
        value = cond.get("value")
        value_field = path(field, "value")
        if op in _ORDERING:
            if not _is_number(value) or not Decimal(str(value)).is_finite():
                raise FieldError(value_field, f"must be a number for {op}")
        elif op == "contains":
            if not isinstance(value, str) or not value:
                raise FieldError(value_field, "must be a non-empty string for contains")
        elif not (_is_number(value) or isinstance(value, str)):
            raise FieldError(value_field, "must be a string or a number")
        if isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise FieldError(value_field, f"must be at most {MAX_VALUE_CHARS} characters")
        out.append({"param": param, "op": op, "value": value})
    return out


def _number(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _text(value: object) -> str:
    # A JSON number sent as a number reads as it was written (1.0 stays "1.0").
    return value if isinstance(value, str) else str(value)


def holds(op: str, expected: object, actual: object) -> bool:
    """Whether the event's `actual` value meets `op expected` (see the module docstring)."""
    if actual is None or isinstance(actual, list | dict):
        return op == "!="
    if op == "contains":
        return isinstance(expected, str) and expected in _text(actual)
    if _is_number(expected):
        ours, theirs = _number(actual), Decimal(str(expected))
        if ours is None:
            return op == "!="
        return {
            "==": ours == theirs,
            "!=": ours != theirs,
            ">": ours > theirs,
            ">=": ours >= theirs,
            "<": ours < theirs,
            "<=": ours <= theirs,
        }[op]
    same = isinstance(actual, str | int | float) and not isinstance(actual, bool)
    same = same and _text(actual) == expected
    return same if op == "==" else not same if op == "!=" else False


def evaluate(
    conditions: Sequence[Mapping[str, Any]], event_value: Mapping[str, object]
) -> list[dict[str, object]]:
    """One record per condition: the condition, the value the event sent (null when absent)
    and whether it was `met`."""
    records: list[dict[str, object]] = []
    for cond in conditions:
        actual = event_value.get(str(cond["param"]))
        shown = actual if isinstance(actual, str | int | float | bool) else None
        if isinstance(shown, str) and len(shown) > MAX_VALUE_CHARS:
            shown = shown[:MAX_VALUE_CHARS]
        records.append(
            {
                "param": cond["param"],
                "op": cond["op"],
                "value": cond["value"],
                "actual": shown,
                "met": holds(str(cond["op"]), cond["value"], actual),
            }
        )
    return records
