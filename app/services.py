"""What a running Gangway holds for its handlers and workers: one object, made by the lifespan.

Handlers reach it with `services(request)`; nothing here is created at import time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network
from typing import TYPE_CHECKING

import httpx
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from app.burst import BurstCounter
from app.clock import Clock
from app.geo import Locator
from app.settings import Settings
from app.snippet_asset import ScriptAsset
from app.store.sqlite import Store

if TYPE_CHECKING:
    from app.postbacks.outbox import OutboxWorker


@dataclass
class Counters:
    """Process-local counters for /metrics (Prometheus counts from process start)."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    touches: Counter[str] = field(default_factory=Counter)
    installs: Counter[str] = field(default_factory=Counter)


@dataclass
class Services:
    settings: Settings
    store: Store
    http: httpx.AsyncClient
    clock: Clock
    locator: Locator
    burst: BurstCounter
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...]
    templates: Jinja2Templates
    # The snippet files, minified and hashed once at start-up: "smartscript", "banner".
    scripts: dict[str, ScriptAsset]
    counters: Counters = field(default_factory=Counters)
    # The postback worker, once started; the SDK endpoints nudge it after queuing a postback.
    outbox: OutboxWorker | None = None


def services(request: Request) -> Services:
    found: Services = request.state.services
    return found
