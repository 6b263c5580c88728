"""A real Gangway server in a subprocess: uvicorn on a free port of 127.0.0.1.

Browser tests need a real socket, and a subprocess is the honest shape: it is how `serve` runs,
and a test can kill it (SIGKILL) to prove durability. Its output goes to a log file that is
printed when the server does not come up, or when a test using it fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.paths import ROOT

START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    def __init__(
        self, db: str, env: dict[str, str] | None = None, *, log_path: Path | None = None
    ) -> None:
        """`db` is a file or a postgresql:// URL; a URL's server needs `log_path`."""
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or Path(db).with_suffix(".log")
        self.env = {
            **os.environ,
            "GANGWAY_DB": db,
            "GANGWAY_SECRET_KEY": "live-test-secret",
            "GANGWAY_TIKTOK_API_URL": "http://127.0.0.1:9",
            "GANGWAY_TIKTOK_TIMEOUT_SECONDS": "2",
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LiveServer:
        with self.log_path.open("ab") as log:  # the child keeps its own copy of the fd
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.logs()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not answer within {START_TIMEOUT} s:\n{self.logs()}")

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no flush; what was acknowledged must survive."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
