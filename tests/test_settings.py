from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from app.__main__ import main
from app.settings import SECRET_FILE, Secret, Settings, describe


def test_every_setting_has_a_default_and_help() -> None:
    rows = describe(Settings())
    assert len(rows) == len(fields(Settings))
    for name, _value, help_text in rows:
        assert name.startswith("GANGWAY_")
        assert help_text.strip(), name


def test_environment_overrides_defaults() -> None:
    s = Settings.from_env(
        {
            "GANGWAY_DB": "/tmp/x.db",
            "GANGWAY_PORT": "9001",
            "GANGWAY_TRUST_GEO_HEADERS": "yes",
            "GANGWAY_LDU_STATES": "ca, tx",
            "GANGWAY_UNIFIED_PIDS": "tiktokweb_int=tiktokglobal_int,foo_int=bar_int",
        }
    )
    assert (s.db, s.port, s.trust_geo_headers) == ("/tmp/x.db", 9001, True)
    assert s.ldu_states == frozenset({"CA", "TX"})
    assert s.unified_pids == {"tiktokweb_int": "tiktokglobal_int", "foo_int": "bar_int"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GANGWAY_PORT", "eighty"),
        ("GANGWAY_TRUST_GEO_HEADERS", "maybe"),
        ("GANGWAY_UNIFIED_PIDS", "tiktokweb_int"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.from_env({name: value})


def test_secrets_never_print() -> None:
    s = Settings.from_env({"GANGWAY_SECRET_KEY": "hunter2-very-secret"})
    assert "hunter2" not in repr(s)
    assert "hunter2" not in str(describe(s))
    assert s.secret_key.reveal() == "hunter2-very-secret"


def test_a_missing_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    s = Settings(db=str(tmp_path / "data" / "g.db"))
    first = s.with_secret()
    second = Settings(db=str(tmp_path / "data" / "g.db")).with_secret()
    assert first.secret_key and first.secret_key == second.secret_key
    key_file = tmp_path / "data" / SECRET_FILE
    assert key_file.stat().st_mode & 0o077 == 0, "the key file must be private to its owner"
    assert Settings(db=s.db, secret_key=Secret("set")).with_secret().secret_key.reveal() == "set"


def test_settings_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings"]) == 0
    out = capsys.readouterr().out
    assert "GANGWAY_TIKTOK_API_URL=https://business-api.tiktok.com" in out
    assert "GANGWAY_SECRET_KEY=" in out
