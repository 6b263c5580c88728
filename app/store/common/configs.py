"""Configuration records as both backends read and answer them, and access tokens at rest.

Sealing is the store's promise whatever the backend: a token is sealed before it is written and
opened when it is read back, and one that cannot be opened is logged and answered as None.
Keeping that here means the backends cannot differ on which tokens they reseal or answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from app.sealing import SealError, TokenSealer, is_sealed
from app.store.common.rows import record_of
from app.store.records import AppRecord, IntegrationRecord, PageRecord

log = logging.getLogger("gangway.store")

# A token's last use is written at most this often: an admin's burst of requests writes once.
TOKEN_USE_RESOLUTION_SECONDS = 60.0


def app_from_row(row: Mapping[str, Any]) -> AppRecord:
    return record_of(AppRecord, row, documents=("config",))


def page_from_row(row: Mapping[str, Any]) -> PageRecord:
    return record_of(PageRecord, row, documents=("config",))


# -- integrations and their tokens -------------------------------------------------------------


def seal_input(sealer: TokenSealer | None, access_token: str | None) -> str | None:
    """A token as it is written; None stays None (the stored token is kept)."""
    if access_token is not None and sealer is not None:
        return sealer.seal(access_token)
    return access_token


def open_token(sealer: TokenSealer | None, app_key: str, stored: str | None) -> str | None:
    """A stored token in clear. Without a sealer a sealed token cannot be read, so it is
    answered as None, as is one the sealer cannot open."""
    if stored is None:
        return None
    if sealer is None:
        return None if is_sealed(stored) else stored
    try:
        return sealer.open(stored)
    except SealError as exc:
        log.error("integration of app %s: %s", app_key, exc)
        return None


def integration_from_row(row: Mapping[str, Any], sealer: TokenSealer | None) -> IntegrationRecord:
    return IntegrationRecord(
        app_key=row["app_key"],
        partner=row["partner"],
        config=json.loads(row["config"]),
        access_token=open_token(sealer, row["app_key"], row["access_token"]),
        updated_at=row["updated_at"],
    )


def all_sealed(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether every stored token (rows of `access_token`) is sealed already."""
    return all(is_sealed(row["access_token"]) for row in rows)


def resealed(sealer: TokenSealer, app_key: str, stored: str, *, rotate: bool) -> str | None:
    """What to store for one token: sealed, or with `rotate` sealed under the current key.
    None: nothing to write (sealed already and no rotation, or it cannot be opened: logged and
    left as it is, so the other tokens are still sealed)."""
    if is_sealed(stored) and not rotate:
        return None
    try:
        return sealer.reseal(stored)
    except SealError as exc:
        log.error("integration of app %s: %s", app_key, exc)
        return None


# -- admin tokens ------------------------------------------------------------------------------


def token_use_due(last_used_at: float | None, now: float) -> bool:
    """Whether a valid token's use is written now: never recorded, or not for a while."""
    return last_used_at is None or now - last_used_at >= TOKEN_USE_RESOLUTION_SECONDS
