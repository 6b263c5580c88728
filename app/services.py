"""What a running Gangway holds for its handlers: one object, made by the lifespan.

Handlers reach it with `services(request)`; nothing here is created at import time. Background
jobs are not in it: they get their own explicit arguments (`app/jobs.py`), and handlers reach
the outbox only by `nudge_outbox()`, the cost pull only by `request_cost_pull`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network

import httpx
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from app.burst import BurstCounter
from app.clock import Clock
from app.geo import Locator
from app.settings import Settings
from app.snippet_asset import ScriptAsset
from app.store.interfaces import Store


@dataclass
class Counters:
    """Process-local counters for /metrics (Prometheus counts from process start)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    touches: Counter[str] = field(default_factory=Counter)
    installs: Counter[str] = field(default_factory=Counter)
    # Requests whose client went away before its body was read, by route (not errors).
    disconnects: Counter[str] = field(default_factory=Counter)


@dataclass
class Services:
    settings: Settings
    store: Store
    clock: Clock
    locator: Locator
    burst: BurstCounter
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    templates: Jinja2Templates
    # The snippet files, minified and hashed once at start-up: "smartscript", "banner".
    scripts: dict[str, ScriptAsset]
    counters: Counters = field(default_factory=Counters)
    # Set when a postback is queued; the outbox worker waits on it between rounds.
    outbox_wake: asyncio.Event = field(default_factory=asyncio.Event)
    # Outbound calls the owner's requests make themselves (TikTok Ads: advertiser info, OAuth).
    http: httpx.AsyncClient | None = None
    # Starts a TikTok Ads cost pull of an app in the background (days, or the connection's
    # backfill); False when one is already running. Set by the lifespan.
    request_cost_pull: Callable[[str, int | None], bool] | None = None

    def nudge_outbox(self) -> None:
        """A postback was just queued: the worker looks now rather than at its next poll."""
        self.outbox_wake.set()


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found
