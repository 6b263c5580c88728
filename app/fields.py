"""Reading the fields of a JSON body: one set of readers for the config API and the app surface.

Pure. Each reader takes the parsed object and a key, and answers the value or raises
`FieldError` naming the field as a JSON path (`destinations.ios.store_url`, `device.idfa`) with
the rule it broke; the HTTP layer turns that into a 400 with `field`. Unknown fields are never
read, so they are ignored (http-api.md: "Unknown JSON fields are ignored, wrong types are 400").

Two kinds of text:
- identifiers and settings (`exact`, the default) are kept as sent, stripped: over `limit`
  characters, or holding what storing would change (a NUL, a lone surrogate), is refused, since
  two ids cleaned to one would merge two installs or events;
- descriptive text (`cut=True`: a user agent, a model name) is cleaned and cut to `limit` UTF-8
  bytes instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.clock import parse_time
from app.params import clean_text


class FieldError(ValueError):
    """A body field broke a rule. `field` is its JSON path (None: the body itself)."""

    def __init__(self, field: str | None, rule: str) -> None:
        self.field = field or None
        self.rule = rule
        self.message = f"{self.field} {rule}" if self.field else f"body {rule}"
        super().__init__(self.message)


def path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    return f"{parent}.{key}" if parent else key


def as_object(value: Any, field: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise FieldError(field, "must be a JSON object")
    return value


def optional_object(obj: Mapping[str, Any], key: str, parent: str = "") -> Mapping[str, Any]:
    """An object field; {} when absent or null."""
    value = obj.get(key)
    return {} if value is None else as_object(value, path(parent, key))


def string(
    obj: Mapping[str, Any],
    key: str,
    parent: str = "",
    *,
    limit: int,
    required: bool = False,
    default: str | None = None,
    blank_is_absent: bool = False,
    cut: bool = False,
) -> str | None:
    """A string field, stripped; `default` when absent or null. A blank one is an error when
    `required`, and absent when `blank_is_absent` (else kept as ""). See the module docstring
    for `cut`."""
    field = path(parent, key)
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if value is None or (blank_is_absent and not value.strip()):
        if required:
            raise FieldError(field, "is required")
        return default
    if cut:
        return clean_text(value.strip(), limit)[0]
    if len(value) > limit:
        raise FieldError(field, f"must be at most {limit} characters")
    text = value.strip()
    if required and not text:
        raise FieldError(field, "must not be empty")
    if clean_text(text, len(text) * 4)[0] != text:
        raise FieldError(field, "must be text without NUL or lone surrogates")
    return text


def required_string(obj: Mapping[str, Any], key: str, parent: str = "", *, limit: int) -> str:
    """A required identifier: blank is absent, refused over `limit` characters."""
    value = string(obj, key, parent, limit=limit, required=True, blank_is_absent=True)
    assert value is not None  # `required` raised otherwise
    return value


def boolean(obj: Mapping[str, Any], key: str, parent: str, default: bool) -> bool:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise FieldError(path(parent, key), "must be true or false")
    return value


def whole_number(
    obj: Mapping[str, Any], key: str, parent: str, default: int, lo: int, hi: int
) -> int:
    field = path(parent, key)
    value = obj.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(field, "must be a whole number")
    if not lo <= value <= hi:
        raise FieldError(field, f"must be between {lo} and {hi}")
    return value


def listing(obj: Mapping[str, Any], key: str, parent: str = "") -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise FieldError(path(parent, key), "must be a list")
    return value


def time(obj: Mapping[str, Any], key: str, default: float | None) -> float | None:
    """A time: ISO 8601 (`Z` or an offset) or Unix seconds; `default` when absent or null."""
    value = obj.get(key)
    if value is None:
        return default
    try:
        return parse_time(value)
    except (ValueError, OverflowError):
        raise FieldError(key, "must be an ISO 8601 time or Unix seconds") from None


def valid_unicode(value: Any, field: str) -> None:
    """Refuse a lone surrogate anywhere in `value`: JSON lets a client send "\\ud800", and no
    UTF-8 column, page or answer can hold one. A bad object key is blamed on its parent, so
    the error itself stays printable."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise FieldError(field, "must be valid Unicode text") from None
    elif isinstance(value, Mapping):
        for key, item in value.items():
            valid_unicode(key, field)
            valid_unicode(item, path(field, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            valid_unicode(item, path(field, i))
