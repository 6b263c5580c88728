"""Which Host headers we answer: the public URL's, the allowed hosts, or loopback names.

Links, redirects and QR codes are built on our own origin (`app.web.links.own_origin`), which
is the request's origin when `GANGWAY_PUBLIC_URL` is not set. A forged Host header must not be
able to steer them, so a request to any other host is refused with 400 before it is routed:

- `GANGWAY_PUBLIC_URL`'s host (any port: a proxy may listen on another one) is answered;
- so is each of `GANGWAY_ALLOWED_HOSTS` (`host` matches any port, `host:port` only that port);
- with neither set, only `localhost`, `127.0.0.1` and `[::1]`: `make serve` works out of the
  box, and a real deployment fails loudly on its first request instead of quietly trusting
  whatever Host it is sent.

`/healthz` is answered whatever the Host (load balancers probe by address) and builds no link.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.settings import Settings
from app.web.errors import error_response

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
# Paths answered for any Host: they build no URL.
ANY_HOST_PATHS = frozenset({"/healthz"})


def _split(host: str) -> tuple[str, str | None]:
    """`host[:port]` (IPv6 in brackets) -> (lower-case name, port or None)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":") or None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        return name, port
    return host, None


class HostPolicy:
    def __init__(self, settings: Settings) -> None:
        self.any_port: set[str] = set()
        self.exact: set[tuple[str, str]] = set()
        self._seen: dict[str, bool] = {}
        if settings.public_url:
            public = urlsplit(settings.public_url).hostname
            if public:
                self.any_port.add(public.lower())
        for entry in settings.allowed_hosts:
            name, port = _split(entry)
            if port is None:
                self.any_port.add(name)
            else:
                self.exact.add((name, port))
        if not self.any_port and not self.exact:
            self.any_port |= LOOPBACK

    def allows(self, host: str | None) -> bool:
        if not host:
            return False
        known = self._seen.get(host)
        if known is None:
            name, port = _split(host)
            known = name in self.any_port or (port is not None and (name, port) in self.exact)
            # Remembered per Host value (a real deployment sees a handful); bounded, because
            # anybody can send any Host.
            if len(self._seen) >= 256:
                self._seen.clear()
            self._seen[host] = known
        return known


class HostCheck:
    """Refuses (400) a request whose Host header the policy does not allow."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.policy = HostPolicy(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in ANY_HOST_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        if not self.policy.allows(host):
            answer = error_response(
                400,
                "bad_host",
                "this host is not served here (GANGWAY_PUBLIC_URL, GANGWAY_ALLOWED_HOSTS)",
                "Host",
            )
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)
