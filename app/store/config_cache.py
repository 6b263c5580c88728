"""Configs held in memory: a `ConfigStore` that answers the hot reads without the database.

Every impression, click, landing page and install reads its app (and page, integration) config;
read through a thread, parsed from JSON each time, that was a tenth of an impression's cost. The
configs change rarely and only through `ConfigStore` writes, each of which changes the store's
`config_version()` in its own transaction. So each read asks for the version (one cheap read),
and answers from memory while it is the one the memory was filled at; any other version, written
by this process or another one on the same database, empties the memory first. A config change
is therefore visible to the next request on every process.

The version itself is read at most once per turn of the event loop, not once per request: under
load a turn serves tens of requests, and each read of the database from the loop's thread waits
for the GIL the writer thread holds. That keeps the promise above. A read made during a turn is
forgotten by the first callback of the next turn (`call_soon` from within a turn runs before
anything the next turn's I/O schedules), so only requests whose bytes arrived before the read
use it; any config write their sender waited for was committed before those bytes were sent.
A write through this object forgets it at once.

Records are shared between requests: callers treat them as read-only (they are frozen
dataclasses; nothing writes into their `config` dicts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, cast

from app.store.interfaces import ConfigStore
from app.store.records import AppRecord, IntegrationRecord, PageRecord

T = TypeVar("T")

# A bound on what unknown keys (a flood of made-up app keys or sdk keys) can make it remember.
MAX_ENTRIES = 4096


class CachedConfigs:
    """`ConfigStore` over another one: the same answers, the hot reads from memory."""

    def __init__(self, inner: ConfigStore) -> None:
        self._inner = inner
        self._version: int | None = None
        self._entries: dict[tuple[str, ...], object] = {}
        # The loop whose current turn has read the version; None: read it again.
        self._read_in: asyncio.AbstractEventLoop | None = None

    def _forget_version(self) -> None:
        self._read_in = None

    async def _current(self) -> int | None:
        loop = asyncio.get_running_loop()
        if self._read_in is loop:
            return self._version
        version = await self._inner.config_version()
        if version != self._version:
            self._entries.clear()
            self._version = version
        if self._read_in is not loop:
            self._read_in = loop
            loop.call_soon(self._forget_version)
        return version

    async def _cached(self, key: tuple[str, ...], load: Callable[[], Awaitable[T]]) -> T:
        version = await self._current()
        try:
            return cast(T, self._entries[key])
        except KeyError:
            pass
        value = await load()
        # Kept only if no newer version was seen meanwhile: the value may predate it.
        if self._version == version:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        return value

    async def config_version(self) -> int:
        return await self._inner.config_version()

    # -- read from memory --------------------------------------------------------------------

    async def get_app(self, app_key: str) -> AppRecord | None:
        return await self._cached(("app", app_key), lambda: self._inner.get_app(app_key))

    async def app_by_sdk_key(self, sdk_key: str) -> AppRecord | None:
        return await self._cached(("sdk", sdk_key), lambda: self._inner.app_by_sdk_key(sdk_key))

    async def app_for_destination(self, platform: str, app_id: str) -> AppRecord | None:
        return await self._cached(
            ("destination", platform, app_id),
            lambda: self._inner.app_for_destination(platform, app_id),
        )

    async def get_integration(self, app_key: str, partner: str) -> IntegrationRecord | None:
        return await self._cached(
            ("integration", app_key, partner),
            lambda: self._inner.get_integration(app_key, partner),
        )

    async def get_page(self, slug: str) -> PageRecord | None:
        return await self._cached(("page", slug), lambda: self._inner.get_page(slug))

    # -- straight through: listings are the owner's, writes bump the version ------------------

    async def list_apps(self) -> list[AppRecord]:
        return await self._inner.list_apps()

    async def list_pages(self) -> list[PageRecord]:
        return await self._inner.list_pages()

    async def put_app(self, app_key: str, config: Mapping[str, Any], now: float) -> AppRecord:
        try:
            return await self._inner.put_app(app_key, config, now)
        finally:
            self._forget_version()

    async def delete_app(self, app_key: str) -> bool:
        try:
            return await self._inner.delete_app(app_key)
        finally:
            self._forget_version()

    async def rotate_sdk_key(self, app_key: str, now: float) -> AppRecord | None:
        try:
            return await self._inner.rotate_sdk_key(app_key, now)
        finally:
            self._forget_version()

    async def put_integration(
        self,
        app_key: str,
        partner: str,
        config: Mapping[str, Any],
        access_token: str | None,
        now: float,
    ) -> IntegrationRecord:
        try:
            return await self._inner.put_integration(app_key, partner, config, access_token, now)
        finally:
            self._forget_version()

    async def delete_integration(self, app_key: str, partner: str) -> bool:
        try:
            return await self._inner.delete_integration(app_key, partner)
        finally:
            self._forget_version()

    async def seal_tokens(self, *, rotate: bool = False) -> int:
        try:
            return await self._inner.seal_tokens(rotate=rotate)
        finally:
            self._forget_version()

    async def put_page(self, slug: str, config: Mapping[str, Any], now: float) -> PageRecord:
        try:
            return await self._inner.put_page(slug, config, now)
        finally:
            self._forget_version()

    async def delete_page(self, slug: str) -> bool:
        try:
            return await self._inner.delete_page(slug)
        finally:
            self._forget_version()
