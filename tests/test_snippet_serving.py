"""The snippet files as the server sends them: minified, typed, cached by content hash."""

from __future__ import annotations

import hashlib
import re

import pytest
import rjsmin
from starlette.testclient import TestClient

from app.paths import SMARTSCRIPT_DIR

FILES = ["smartscript.js", "banner.js"]
SHORT_CACHE = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"
STRONG_ETAG = re.compile(r'"[^"]+"')  # no W/ prefix


def minified(name: str) -> str:
    return str(rjsmin.jsmin((SMARTSCRIPT_DIR / name).read_text(encoding="utf-8")))


def content_hash(name: str) -> str:
    """The `?v=` of a file: the first twelve hex digits of the SHA-256 of the served bytes."""
    return hashlib.sha256(minified(name).encode("utf-8")).hexdigest()[:12]


def test_the_landing_page_loads_the_snippet_by_content_hash(client: TestClient) -> None:
    page = client.get("/lp/demo")
    assert page.status_code == 200
    found = re.findall(r'<script src="/smartscript\.js\?v=([0-9a-f]+)"', page.text)
    assert found == [content_hash("smartscript.js")]


@pytest.mark.parametrize("name", FILES)
def test_served_minified_with_a_short_cache_and_a_strong_etag(
    client: TestClient, name: str
) -> None:
    response = client.get(f"/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == SHORT_CACHE
    assert STRONG_ETAG.fullmatch(response.headers["etag"])
    assert response.text == minified(name)
    assert len(response.content) < len((SMARTSCRIPT_DIR / name).read_bytes())


@pytest.mark.parametrize("name", FILES)
def test_the_content_hash_url_is_immutable(client: TestClient, name: str) -> None:
    response = client.get(f"/{name}?v={content_hash(name)}")
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["etag"] == client.get(f"/{name}").headers["etag"]
    # Another version's URL must not be cached for a year with these bytes.
    stale = client.get(f"/{name}?v=000000000000")
    assert stale.headers["cache-control"] == SHORT_CACHE


@pytest.mark.parametrize("name", FILES)
def test_revalidation_with_the_etag_is_304(client: TestClient, name: str) -> None:
    etag = client.get(f"/{name}").headers["etag"]
    response = client.get(f"/{name}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == SHORT_CACHE
    other = client.get(f"/{name}", headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.content
