"""The Jinja2 environment of our pages: autoescape on, and `static_url()` with content hashes."""

from __future__ import annotations

import hashlib
from functools import cache

import jinja2
from starlette.templating import Jinja2Templates

from app.paths import STATIC_DIR, TEMPLATES_DIR


@cache
def static_hash(name: str) -> str:
    """Content hash of a static file, read once per process (files do not change while we run)."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_hash(name)}"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Every template is HTML and every value may come from a hostile query string.
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        # Templates do not change while we run (like static files): without this every page
        # stat()ed each of its template files to see whether it had (5 a landing page).
        auto_reload=False,
    )
    env.globals["static_url"] = static_url
    return Jinja2Templates(env=env)
