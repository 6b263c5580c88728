"""The command line a newcomer meets first: demo, token create, settings, serve --help."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.ids import token_hash
from app.paths import ROOT
from tests.fixtures import run_cli as main


def test_demo_is_idempotent_and_keeps_the_sdk_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "g.db")
    assert main(["demo", "--db", db]) == 0
    first = capsys.readouterr().out
    assert main(["demo", "--db", db]) == 0
    second = capsys.readouterr().out
    assert "/lp/demo" in first
    assert first == second  # same sdk_key printed: the app was updated, not re-created


def test_token_create_prints_the_token_alone_on_the_last_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "g.db"
    assert main(["token", "create", "--db", str(db)]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert len(token) >= 40 and " " not in token
    # Stored hashed, never in clear.
    files = [p for p in tmp_path.iterdir() if p.name.startswith("g.db")]
    assert all(token.encode() not in p.read_bytes() for p in files)
    hashes = [r[0] for r in sqlite3.connect(db).execute("SELECT token_hash FROM tokens")]
    assert hashes == [token_hash(token)]


def test_a_bad_setting_is_a_clear_error_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "settings"],
        cwd=ROOT,
        env={"GANGWAY_PORT": "http", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "GANGWAY_PORT" in result.stderr and "Traceback" not in result.stderr


def test_every_command_has_help() -> None:
    for argv in (["serve", "--help"], ["demo", "--help"], ["token", "create", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
