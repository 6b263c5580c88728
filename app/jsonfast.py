"""JSON on the hot paths: orjson where it agrees with the standard library, the standard
library for everything orjson refuses.

orjson parses and writes several times faster, but it refuses what Python's `json` accepts and
the rest of Gangway relies on seeing: lone surrogates ("\\ud800", which the field rules answer
with their own 400), NaN and Infinity, integers past 64 bits, nesting past 1024 levels, keys
that are not strings. So every refusal is retried with `json`, whose answer (value or error)
is exactly the one Gangway gave before.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # the pure-Python standard library then does it all
    orjson = None  # type: ignore[assignment]


def loads(raw: bytes) -> Any:
    """`json.loads(raw.decode("utf-8"))`, faster. Raises what that raises."""
    if orjson is not None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw.decode("utf-8"))


def dumps(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False)` with compact separators, faster, for values made
    of strings, whole numbers, finite floats, lists and string-keyed objects (orjson writes NaN
    as null: callers keep NaN out)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode("utf-8")
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
