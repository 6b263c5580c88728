"""Audiences as both backends hold them: the rule kept as its config document, the checks of
what a caller names (an ID column, a member action), and the keyset walk over the installs a
rule matches, so either backend answers a sync the same."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from app.audiences import APPEND, REMOVE, Audience, AudienceRule, MemberQuery, rule_from_config

T = TypeVar("T")

AUDIENCE_COLUMNS = (
    "id",
    "app_key",
    "name",
    "config",
    "tiktok_audience_id",
    "state",
    "member_count",
    "sent_count",
    "last_sync_at",
    "last_error",
    "created_at",
    "updated_at",
)
# The ID column is written into the SQL, not bound: only these names may reach it.
_ID_COLUMNS = frozenset({"idfa", "gaid"})

# One page of matched installs, (time, id, device ID) rows, after a (time, id) cursor.
PageAfter = Callable[[tuple[float, str]], Awaitable[list[dict[str, Any]]]]


def config_text(rule: AudienceRule) -> str:
    # The rule as its config document: what `audience` reads back with `rule_from_config`.
    return json.dumps(rule.to_config())


def audience(row: dict[str, Any]) -> Audience:
    return Audience(
        id=row["id"],
        app_key=row["app_key"],
        name=row["name"],
        rule=rule_from_config(json.loads(row["config"])),
        tiktok_audience_id=row["tiktok_audience_id"],
        state=row["state"],
        member_count=row["member_count"],
        sent_count=row["sent_count"],
        last_sync_at=row["last_sync_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def id_column(query: MemberQuery) -> str:
    column = query.id_column
    if column not in _ID_COLUMNS:
        raise ValueError(f"not an advertising ID column: {column}")
    return column


def by_action(action: str, append: T, remove: T) -> T:
    """The backend's own `append` or `remove` (SQL, usually) for a member action; an action
    of neither kind is refused rather than left to match no members."""
    if action == APPEND:
        return append
    if action == REMOVE:
        return remove
    raise ValueError(f"unknown action {action}")


async def member_pages(
    query: MemberQuery, batch: int, page_after: PageAfter
) -> AsyncIterator[list[str]]:
    """The IDs of the installs `query` matches, a page at a time: each page starts after the
    last one's (time, id), so no page holds more than `batch` installs and none is read
    twice. A short page is the last."""
    after: tuple[float, str] = (query.installed_since, "")
    while True:
        page = await page_after(after)
        if not page:
            return
        last = page[-1]
        after = (last["time"], last["id"])
        yield [r[query.id_column] for r in page]
        if len(page) < batch:
            return
