"""Every `GANGWAY_` setting, with its default and a one-line help text.

One frozen object, read once from the environment at start-up. `python -m app settings` prints
the table. Secrets never show in a repr or a log line: they are wrapped in `Secret`.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from app.vocabulary import DEFAULT_UNIFIED_PIDS, PARTNER, UNIFIED_PARTNER

PREFIX = "GANGWAY_"
DEFAULT_DB = "./data/gangway.db"
SECRET_FILE = "secret.key"


class Secret:
    """A string that does not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _pairs(raw: str) -> dict[str, str]:
    """`a=b,c=d` -> {"a": "b", "c": "d"}."""
    out: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _codes(raw: str) -> frozenset[str]:
    return frozenset(code.strip().upper() for code in raw.split(",") if code.strip())


def _hosts(raw: str) -> frozenset[str]:
    return frozenset(host.strip().lower() for host in raw.split(",") if host.strip())


def _setting(default: Any, help: str, parse: Callable[[str], Any] | None = None) -> Any:
    metadata = {"help": help, "parse": parse}
    if isinstance(default, Mapping):
        return field(default_factory=lambda: dict(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    db: str = _setting(
        DEFAULT_DB,
        "SQLite database file (its folder is the data directory), or a postgresql:// URL for "
        "several nodes on one database (docs/scale.md)",
    )
    secret_key: Secret = _setting(
        Secret(""),
        "Key for signed values (cookies, tokens); empty: generated once into the data "
        "directory (with a postgresql:// database it must be set, the same on every node)",
        Secret,
    )
    public_url: str = _setting(
        "",
        "Public base URL of this service (https://track.example.com); empty: the request's own",
    )
    allowed_hosts: frozenset[str] = _setting(
        frozenset(),
        "Other Host names answered besides the public URL's (comma list; host or host:port); "
        "with neither set only localhost, 127.0.0.1 and ::1 are answered",
        _hosts,
    )
    tiktok_api_url: str = _setting(
        "https://business-api.tiktok.com",
        "Base URL of TikTok's Events and Marketing APIs (and its OAuth consent page)",
    )
    tiktok_timeout_seconds: float = _setting(
        10.0, "Timeout of one request to TikTok's Events API", float
    )
    tiktok_app_id: str = _setting(
        "", "App ID of a TikTok for Business developer app: enables 'Connect TikTok Ads' (OAuth)"
    )
    tiktok_app_secret: Secret = _setting(
        Secret(""), "Secret of that developer app (with GANGWAY_TIKTOK_APP_ID)", Secret
    )
    cost_pull_check_minutes: float = _setting(
        10.0,
        "How often the server looks for TikTok Ads connections due a cost pull (each pulls "
        "every pull_every_hours of its own)",
        float,
    )
    trusted_proxies: str = _setting(
        "", "Networks whose X-Forwarded-For is believed (comma list of CIDRs or addresses)"
    )
    trust_geo_headers: bool = _setting(
        False, "Believe CloudFront / Cloudflare country and region headers", _bool
    )
    geoip_db: str = _setting("", "MaxMind-format (.mmdb) database for touch locations")
    ldu_states: frozenset[str] = _setting(
        _codes("CA,VA,CO,CT,UT,TX,OR,MT,FL,DE,IA,NE,NH,NJ,TN,MN,MD,IN,KY,RI"),
        "US states where CCPA limited data use applies when the integration's switch is on",
        _codes,
    )
    burst_limit: int = _setting(
        60, "Touches per IP per minute above which touches are marked suspect (burst_ip)", int
    )
    unified_pids: Mapping[str, str] = _setting(
        DEFAULT_UNIFIED_PIDS,
        "Media source map for reports (pid=unified, comma list)",
        _pairs,
    )
    retention: Mapping[str, str] = _setting(
        {PARTNER: "183d", UNIFIED_PARTNER: "183d"},
        "How long user-level data of a media source is kept (pid=183d, comma list)",
        _pairs,
    )
    retention_rewrite_aggregates: bool = _setting(
        False, "Move retained installs to organic in past daily rollups too", _bool
    )
    writer_batch_max: int = _setting(256, "Most writes committed together in one group commit", int)
    outbox_lease_seconds: float = _setting(
        60.0,
        "How long a node holds the postbacks it is sending; a dead node's go to another after it",
        float,
    )
    host: str = _setting("127.0.0.1", "Address `serve` listens on")
    port: int = _setting(8000, "Port `serve` listens on", int)
    log_level: str = _setting("info", "Log level: debug, info, warning, error")
    access_log: bool = _setting(
        True,
        "Gangway's access log: JSON lines, no query strings on tracking routes, limited users' "
        "IPs truncated",
        _bool,
    )
    uvicorn_access_log: bool = _setting(
        False, "uvicorn's own access log (full query strings and client IPs: off by default)", _bool
    )
    keep_alive_seconds: float = _setting(
        5.0, "An idle keep-alive connection is closed this long after its last answer", float
    )
    header_timeout_seconds: float = _setting(
        10.0, "A connection whose request headers take longer than this is closed", float
    )
    ldu_mask_after_days: float = _setting(
        30.0,
        "Days after which a limited-data-use install's IP is truncated and its GAID, Android "
        "ID and IDFA removed (default: the longest click lookback window)",
        float,
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from `GANGWAY_<NAME>`; a bad value raises ValueError naming it."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None:
                continue
            parse = f.metadata["parse"] or str
            try:
                values[f.name] = parse(raw)
            except ValueError as exc:
                raise ValueError(f"{PREFIX}{f.name.upper()}: {exc}") from None
        return cls(**values)

    @property
    def data_dir(self) -> Path:
        # A database URL names no folder: the default one holds what the node keeps locally.
        db = DEFAULT_DB if "://" in self.db else self.db
        return Path(db).expanduser().resolve().parent

    def with_secret(self) -> Settings:
        """This object with a secret key: the configured one, else the one kept in the data
        directory, generated on first use so signed values survive restarts."""
        if self.secret_key:
            return self
        if "://" in self.db:
            # Several nodes share the database: a key of each node's own would let none of
            # them open a token another sealed, nor verify a session cookie another signed.
            raise ValueError(
                f"{PREFIX}SECRET_KEY: required with a database URL (every node on one database "
                "must have the same key)"
            )
        path = self.data_dir / SECRET_FILE
        # The data directory holds the database and this key: its owner's alone.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            # O_EXCL: two processes starting at once must not each write their own key.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(48))
        return replace(self, secret_key=Secret(path.read_text().strip()))


def describe(settings: Settings) -> list[tuple[str, str, str]]:
    """(environment variable, current value, help) for every setting; secrets masked."""
    rows = []
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, frozenset):
            shown = ",".join(sorted(value))
        elif isinstance(value, Mapping):
            shown = ",".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, Secret):
            shown = "(set)" if value else "(generated into the data directory)"
        else:
            shown = str(value)
        if f.name == "db":  # a database URL's password stays out of the listing
            shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", shown)
        rows.append((PREFIX + f.name.upper(), shown, f.metadata["help"]))
    return rows
