"""The snippet files as they are served: read once at start-up, minified, content-hashed.

`smartscript.js` and `banner.js` are plain source files (no build tool). The server minifies
each once with rjsmin, which only strips whitespace and comments, and keeps the bytes in memory;
the content hash goes into `?v=` URLs that may be cached for a year, the ETag answers
revalidation of the plain URL.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import rjsmin

# Twelve hex digits (48 bits) tell versions of one file apart; the URL stays short.
CONTENT_HASH_LENGTH = 12


@dataclass(frozen=True, slots=True)
class ScriptAsset:
    body: bytes  # minified UTF-8 JavaScript
    etag: str  # strong ETag, quoted: '"<sha256 prefix>"'
    content_hash: str  # for `?v=`


def minify(source: str) -> str:
    """The served form of a snippet source (also what the size budget measures)."""
    return str(rjsmin.jsmin(source))


def load_script(path: Path) -> ScriptAsset:
    body = minify(path.read_text(encoding="utf-8")).encode("utf-8")
    digest = hashlib.sha256(body).hexdigest()
    return ScriptAsset(
        body=body, etag=f'"{digest[:32]}"', content_hash=digest[:CONTENT_HASH_LENGTH]
    )
