"""Issue #16 against a real server (`python -m app serve` in a subprocess): clients that leave
mid-body, idle and slow connections, and what the logs keep.

One server for the module, with short connection timeouts so the tests wait about a second.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fixtures import seed
from tests.live import LiveServer

TIMEOUT_SECONDS = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = str(tmp_path_factory.mktemp("hardening") / "gangway.db")
    _, sdk_key = seed(db)
    env = {
        "GANGWAY_KEEP_ALIVE_SECONDS": str(TIMEOUT_SECONDS),
        "GANGWAY_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        "GANGWAY_TRUSTED_PROXIES": "127.0.0.1",
        "GANGWAY_TRUST_GEO_HEADERS": "true",
    }
    live = LiveServer(db, env).start()
    live.sdk_key = sdk_key  # type: ignore[attr-defined]
    yield live
    live.stop()


def connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def closed_after(sock: socket.socket) -> float:
    """Seconds until the server closes `sock` (reading and dropping what it sends)."""
    started = time.monotonic()
    while sock.recv(65536):
        pass
    return time.monotonic() - started


def read_response(sock: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body), however the server wrote it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return head


def count_rows(server: LiveServer, table: str) -> int:
    conn = sqlite3.connect(f"file:{server.db}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def metric_lines(server: LiveServer, name: str) -> list[str]:
    text = httpx.get(server.url + "/metrics", timeout=5).text
    return [line for line in text.splitlines() if line.startswith(name)]


def access_lines(server: LiveServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]


# -- item 2: a client that leaves mid-body ---------------------------------------------------------

ROUTES = {
    "post_install": ("/api/v1/installs", "application/json"),
    "post_event": ("/api/v1/events", "application/json"),
    "impression": ("/i/demo", "text/plain"),
}


def test_clients_leaving_mid_body_are_counted_apart_not_500s(server: LiveServer) -> None:
    installs_before = count_rows(server, "installs")
    per_route = 20
    for path, content_type in ROUTES.values():
        socks = []
        for _ in range(per_route):
            sock = connect(server)
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {server.sdk_key}\r\n"  # type: ignore[attr-defined]
                f"Content-Type: {content_type}\r\nContent-Length: 600\r\n\r\n"
                '{"app_key": "demo", "platform": "android", "app_'.encode()
            )
            socks.append(sock)
        time.sleep(0.2)
        for sock in socks:
            sock.close()
    deadline = time.monotonic() + 10
    expected = {
        f'gangway_client_disconnects_total{{route="{route}"}} {per_route}' for route in ROUTES
    }
    while time.monotonic() < deadline:
        if expected <= set(metric_lines(server, "gangway_client_disconnects_total")):
            break
        time.sleep(0.1)
    assert expected <= set(metric_lines(server, "gangway_client_disconnects_total"))
    assert not [line for line in metric_lines(server, "gangway_requests_total") if "500" in line]
    logs = server.logs()
    assert "Traceback" not in logs and "ClientDisconnect" not in logs
    assert logs.count("client disconnected mid-body") == per_route * len(ROUTES)
    assert count_rows(server, "installs") == installs_before


# -- item 8: idle and slow connections are closed --------------------------------------------------


def test_a_connection_that_sends_nothing_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        waited = closed_after(sock)
    assert TIMEOUT_SECONDS * 0.8 <= waited < TIMEOUT_SECONDS + 2


def test_a_connection_trickling_its_headers_is_closed(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        started = time.monotonic()
        try:
            for _ in range(10):  # a header every 0.3 s: never done, always busy
                time.sleep(0.3)
                sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            pass  # closed under us: what we want
        waited = time.monotonic() - started + closed_after(sock)
    assert waited < TIMEOUT_SECONDS + 2


def test_a_kept_alive_connection_is_closed_when_idle(server: LiveServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        # A second request on the same connection is fine, and answered in full.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200")
        waited = closed_after(sock)
    assert waited < TIMEOUT_SECONDS + 2


# -- item 7: the access log ------------------------------------------------------------------------


def test_the_access_log_is_json_without_click_ids_and_masks_limited_ips(
    server: LiveServer,
) -> None:
    query = "pid=tiktokweb_int&c=summer&ttclid=E.C.P.secret-click&af_sub1=E.C.P.secret-click"
    limited = {"X-Forwarded-For": "203.0.113.7", "Sec-GPC": "1"}
    abroad = {"X-Forwarded-For": "198.51.100.9", "CF-IPCountry": "DE"}
    for headers in (limited, abroad):
        answer = httpx.get(
            f"{server.url}/c/demo?{query}", headers=headers, follow_redirects=False, timeout=5
        )
        assert answer.status_code == 302
    httpx.get(f"{server.url}/healthz?probe=1", timeout=5)
    time.sleep(0.2)
    logs = server.logs()
    # Neither Gangway's access log nor uvicorn's (off by default) wrote the click id.
    assert "secret-click" not in logs
    clicks = [line for line in access_lines(server) if line["path"] == "/c/demo"]
    assert [(c["status"], c["ip"]) for c in clicks[-2:]] == [
        (302, "203.0.113.0"),
        (302, "198.51.100.9"),
    ]
    assert all("query" not in c for c in clicks)
    [probe] = [line for line in access_lines(server) if line["path"] == "/healthz"][-1:]
    assert probe["query"] == "probe=1"
    assert set(probe) >= {"time", "method", "path", "status", "ms", "ip"}
