"""Running a coroutine from a sync test, whatever the main thread is doing.

Playwright's sync API keeps an event loop running in the main thread once a browser test has
run, and `asyncio.run()` refuses to start inside it; a thread of its own always works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
