"""How `python -m app serve` runs uvicorn: the event loop and HTTP parser, connection timeouts,
header limits, the logs.

Stack: uvloop and httptools (C event loop, C HTTP parser) when both are installed, as they are
with Gangway's own dependencies; asyncio and h11 otherwise. Measured with
`benchmarks/ingest.py`, the faster stack about doubles what one process answers; every
guarantee below holds on both.

Uvicorn closes a keep-alive connection `timeout_keep_alive` seconds after its last answer, but
a connection that never finishes its request headers is never closed: one that sends nothing,
or trickles a header a minute (slowloris), holds a socket and its memory for ever.
`GuardedH11Protocol` and `GuardedHttpToolsProtocol` close a connection whose request line and
headers have not all arrived within `header_timeout` seconds of its opening, or of the first byte
of its next request. h11 refuses a request line and headers over `MAX_HEADER_BYTES`; httptools
has no such bound, so its guard counts the bytes itself and answers 431.

Logs: uvicorn's own access log prints every query string (a `ttclid` per click) and every
client address; it is off unless `GANGWAY_UVICORN_ACCESS_LOG` turns it on. Gangway's access log
(`app.web.middleware.AccessLog`, logger `gangway.access`) writes JSON lines instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

try:
    import uvloop  # noqa: F401 - only whether it is there
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    FAST_STACK = True
except ImportError:  # a platform without the wheels: the pure-Python stack
    FAST_STACK = False

from app.settings import Settings

# The request line and headers together may not exceed this (h11's own default, stated).
MAX_HEADER_BYTES = 16 * 1024


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on reading each request's headers."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if self._header_deadline is None and (before is None or before.response_complete):
            # The first bytes of the next request on a kept-alive connection.
            self._arm_header_deadline()
        super().data_received(data)
        if self.cycle is not before:
            # Its headers are complete: the request is the application's now.
            self._disarm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being answered: not ours to cut
        if self.conn.our_state is not h11.ERROR:
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
        self.transport.close()


if FAST_STACK:

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol with the same deadline on each request's headers, and
        a bound on their size (httptools has none: headers would grow until memory ran out)."""

        header_timeout: float = 10.0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._header_deadline: asyncio.TimerHandle | None = None
            self._header_bytes = 0
            self._in_headers = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm_header_deadline()

        def data_received(self, data: bytes) -> None:
            cycle = self.cycle
            if self._header_deadline is None and (cycle is None or cycle.response_complete):
                # The first bytes of the next request on a kept-alive connection.
                self._arm_header_deadline()
            if self._header_deadline is not None or self._in_headers:
                # Counted before parsing: the parser would hold them all, however many.
                end = data.find(b"\r\n\r\n")
                self._header_bytes += len(data) if end < 0 else end + 4
                if self._header_bytes > MAX_HEADER_BYTES:
                    self._refuse_headers()
                    return
            super().data_received(data)

        def _refuse_headers(self) -> None:
            self._disarm_header_deadline()
            if not self.transport.is_closing():
                self.transport.write(
                    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                    b"content-length: 0\r\nconnection: close\r\n\r\n"
                )
                self.transport.close()

        def on_message_begin(self) -> None:
            self._in_headers = True
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            # Its headers are complete: the request is the application's now.
            self._in_headers = False
            self._header_bytes = 0
            self._disarm_header_deadline()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_header_deadline()
            super().connection_lost(exc)

        def _arm_header_deadline(self) -> None:
            self._disarm_header_deadline()
            self._header_bytes = 0
            self._header_deadline = self.loop.call_later(
                self.header_timeout, self._headers_too_slow
            )

        def _disarm_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered: not ours to cut
            self.transport.close()


def protocol_class(header_timeout: float) -> type[asyncio.Protocol]:
    """The guarded protocol of the stack in use, with the settings' header deadline."""
    base: type[asyncio.Protocol] = GuardedHttpToolsProtocol if FAST_STACK else GuardedH11Protocol
    return type("GangwayHttpProtocol", (base,), {"header_timeout": header_timeout})


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` hands to `uvicorn.run` besides the app, host and port."""
    return {
        "loop": "uvloop" if FAST_STACK else "asyncio",
        "http": protocol_class(settings.header_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_seconds,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "access_log": settings.uvicorn_access_log,
        "log_level": settings.log_level,
        # The server's own handlers stay: `serve` set up logging before starting.
        "log_config": None,
    }


class TurnBufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes what one turn of the event loop logged in one write.

    A line a request meant a write and a flush, a system call on the loop's thread, per request;
    now a turn's lines (tens under load) go out together, at the start of the next turn. Off
    the loop (start-up, worker threads) every line is written at once, as before."""

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging never raises into the request
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)
            if loop is None:
                self._write()
            elif self._loop is not loop:  # none scheduled yet (or on a loop now gone)
                self._loop = loop
                loop.call_soon(self._flush_turn)

    def _flush_turn(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._loop = None
            self._write()

    def _write(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # noqa: BLE001 - a closed or full stream must not fail requests
            pass

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write()
        super().flush()


def configure_logging(settings: Settings) -> None:
    """Plain lines for Gangway's and uvicorn's logs; the access log as bare JSON lines."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    access = logging.getLogger("gangway.access")
    access.propagate = False
    access.setLevel(logging.INFO if settings.access_log else logging.CRITICAL + 1)
    if not access.handlers:
        handler = TurnBufferedHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)


def serve(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    import uvicorn

    configure_logging(settings)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(settings))
