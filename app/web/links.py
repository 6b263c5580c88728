"""Our own origin and the URLs we build on it: one place for both."""

from __future__ import annotations

from starlette.requests import Request

from app.settings import Settings


def own_origin(request: Request, settings: Settings) -> str:
    """`GANGWAY_PUBLIC_URL` when set (behind a proxy the request's host may be internal), else
    the origin the request came to."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}"


def click_base(origin: str, app_key: str) -> str:
    return f"{origin}/c/{app_key}"
