"""JSON documents as every backend stores them: text, readable UTF-8 where it can be."""

from __future__ import annotations

import json


def json_text(value: object) -> str:
    """JSON as stored: readable UTF-8, unless the value holds a lone surrogate ("\\ud800", which
    a client may send and no UTF-8 column can hold); then escaped ASCII, which reads back the
    same."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value)
    return text
