"""Command line: `python -m app serve|demo|token create|settings|rollups rebuild|retention run`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from app.clock import system_clock
from app.settings import Settings, describe
from app.store.backends import open_store
from app.store.interfaces import Store

T = TypeVar("T")

DEMO_APP = {
    "name": "Demo Game",
    "destinations": {
        "ios": {
            "app_id": "id1234567890",
            "store_url": "https://apps.apple.com/app/id1234567890",
        },
        "android": {
            "app_id": "com.example.game",
            "store_url": "https://play.google.com/store/apps/details?id=com.example.game",
        },
        "apk": {"url": "https://cdn.example.com/game.apk"},
        "steam": {"app_id": "440", "store_url": "https://store.steampowered.com/app/440/"},
        "web": {"url": "https://example.com/"},
    },
    "allowed_redirect_hosts": ["example.com"],
    "allowed_origins": [],
}
# Pointed at nothing real: the demo must never send anything to TikTok.
DEMO_INTEGRATION = {
    "enabled": True,
    "pixel_code": "DEMOPIXEL0000000000",
    "test_event_code": "TEST00000",
    "view_through": True,
    "ccpa_limit": False,
    "install_event": "Download",
    "inapp_postbacks": {
        "enabled": True,
        "window_days": 0,
        "for_users": "this_partner",
        "events": [
            {"app_event": "af_purchase", "partner_event": "Purchase", "include_revenue": True},
            {"app_event": "af_complete_registration", "partner_event": "CompleteRegistration"},
        ],
    },
}
DEMO_PAGE = {
    "app_key": "demo",
    "title": "Demo Game",
    "headline": "Build, battle, and play free",
    "body": "A pocket-sized strategy game. Free on iPhone, Android and Steam.",
    "image_url": None,
    "ctas": ["ios", "android", "apk", "steam"],
    "mapping": None,
    "ttclid_sub": "af_sub1",
}


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "db", None):
        settings = dataclasses.replace(settings, db=args.db)
    return settings


async def seed_demo(store: Store) -> None:
    """Idempotent: re-running replaces the demo's config and keeps its sdk_key."""
    from app.configs import validate_app, validate_integration, validate_page
    from app.vocabulary import PARTNER

    now = system_clock()
    app = await store.configs.put_app("demo", validate_app(DEMO_APP), now)
    config, _ = validate_integration(DEMO_INTEGRATION)
    # The token is a placeholder: TikTok would refuse it, and the base URL is a setting anyway.
    await store.configs.put_integration(app.app_key, PARTNER, config, "demo-access-token", now)
    await store.configs.put_page("demo", validate_page(DEMO_PAGE), now)
    print(f"demo app 'demo' ready (sdk_key {app.sdk_key}); landing page /lp/demo")


async def _with_store(db: str, work: Callable[[Store], Awaitable[T]]) -> T:
    store = await open_store(db)
    try:
        return await work(store)
    finally:
        await store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    asyncio.run(_with_store(_settings(args).db, seed_demo))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    label = args.label

    async def create(store: Store) -> str:
        return await store.tokens.create_token(label, system_clock())

    token = asyncio.run(_with_store(_settings(args).db, create))
    print("Admin token (shown once; send it as Authorization: Bearer <token>):")
    print(token)
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    for name, value, help_text in describe(_settings(args)):
        print(f"{name}={value}\n    {help_text}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.server import create_app

    settings = _settings(args)
    host = args.host or settings.host
    port = args.port or settings.port
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    # One process: it owns the SQLite writer (http-api.md; a second process would be a second
    # writer fighting for the lock).
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level)
    return 0


def cmd_rollups_rebuild(args: argparse.Namespace) -> int:
    from app.reports.rollups import RollupFold

    settings = _settings(args)
    fold = RollupFold(settings.unified_pids, rewrite_retained=settings.retention_rewrite_aggregates)

    async def rebuild(store: Store) -> int:
        return await store.reports.rebuild_rollups(args.app, fold)

    written = asyncio.run(_with_store(settings.db, rebuild))
    print(f"rollups rebuilt for {args.app or 'every app'}: {written} rows")
    return 0


def _progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total if total else width
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)
    if done >= total:
        print(file=sys.stderr)


def cmd_retention_run(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime

    from app.jobs.retention import run_retention

    settings = _settings(args)
    now = system_clock()
    try:
        as_of = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"error: --as-of {args.as_of!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    day = as_of or datetime.fromtimestamp(now, UTC).date()
    progress = _progress_bar if sys.stderr.isatty() else None

    async def run(store: Store) -> dict[str, int]:
        return await run_retention(store, settings, as_of=day, now=now, progress=progress)

    counts = asyncio.run(_with_store(settings.db, run))
    print(f"retention as of {day.isoformat()}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m app", description="Gangway")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app (one process)")
    serve.add_argument("--host", help="address to listen on (GANGWAY_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (GANGWAY_PORT)")
    serve.add_argument("--db", help="database file (GANGWAY_DB)")
    serve.set_defaults(fn=cmd_serve)

    demo = sub.add_parser("demo", help="seed the demo app, its TikTok integration and page")
    demo.add_argument("--db", help="database file (GANGWAY_DB)")
    demo.set_defaults(fn=cmd_demo)

    token = sub.add_parser("token", help="admin tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="make an admin token and print it once")
    create.add_argument("--db", help="database file (GANGWAY_DB)")
    create.add_argument("--label", default="", help="a note to recognise the token by")
    create.set_defaults(fn=cmd_token_create)

    rollups = sub.add_parser("rollups", help="report rollups")
    rollups_sub = rollups.add_subparsers(dest="rollups_command", required=True)
    rebuild = rollups_sub.add_parser("rebuild", help="recompute the rollups from the raw rows")
    rebuild.add_argument("--app", help="only this app_key (default: every app)")
    rebuild.add_argument("--db", help="database file (GANGWAY_DB)")
    rebuild.set_defaults(fn=cmd_rollups_rebuild)

    retention = sub.add_parser("retention", help="user-level data retention (GANGWAY_RETENTION)")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="erase user-level data past its retention")
    run.add_argument("--as-of", help="run as of this day, YYYY-MM-DD (default: today, UTC)")
    run.add_argument("--db", help="database file (GANGWAY_DB)")
    run.set_defaults(fn=cmd_retention_run)

    settings = sub.add_parser("settings", help="print every GANGWAY_ setting")
    settings.set_defaults(fn=cmd_settings)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except ValueError as exc:  # a bad GANGWAY_ setting: say which, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
