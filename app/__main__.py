"""Command line: `python -m app serve|demo|token create|user create|secrets rotate|settings|
rollups rebuild|retention run|migrate|copy|cost pull|audiences sync`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from app.clock import system_clock
from app.sealing import token_sealer
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
# A made-up pixel: `seed_demo` stores it in dry run, so the demo never sends anything to TikTok.
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


DB_HELP = "database file, or a postgresql:// URL (GANGWAY_DB)"


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings.from_env()
    if getattr(args, "db", None):
        settings = dataclasses.replace(settings, db=args.db)
    return settings


async def seed_demo(store: Store, *, dry_run: bool = True) -> None:
    """Idempotent: re-running replaces the demo's config and keeps its sdk_key.

    The integration is a dry run: its postbacks are built and shown (`GET
    /api/v1/postbacks/{id}`, state `dry_run`), never sent. Tests that deliver to a fake TikTok
    seed it live (`dry_run=False`)."""
    from app.configs import validate_app, validate_integration, validate_page
    from app.vocabulary import PARTNER

    now = system_clock()
    app = await store.configs.put_app("demo", validate_app(DEMO_APP), now)
    config, _ = validate_integration(DEMO_INTEGRATION | {"dry_run": dry_run})
    # The token is a placeholder: TikTok would refuse it, and the base URL is a setting anyway.
    await store.configs.put_integration(app.app_key, PARTNER, config, "demo-access-token", now)
    await store.configs.put_page("demo", validate_page(DEMO_PAGE), now)
    print(f"demo app 'demo' ready (sdk_key {app.sdk_key}); landing page /lp/demo")


async def _with_store(
    settings: Settings,
    work: Callable[[Store], Awaitable[T]],
    *,
    sealed: bool = False,
    old_secrets: Sequence[str] = (),
) -> T:
    """`sealed`: the work reads or writes integration access tokens, so the store gets the
    secret key's sealer (on a database URL the key must be configured: `Settings.with_secret`);
    other commands need no key."""
    sealer = token_sealer(settings, old_secrets) if sealed else None
    store = await open_store(settings.db, sealer=sealer)
    try:
        return await work(store)
    finally:
        await store.close()


def cmd_demo(args: argparse.Namespace) -> int:
    asyncio.run(_with_store(_settings(args), seed_demo, sealed=True))
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    label = args.label

    async def create(store: Store) -> str:
        return await store.tokens.create_token(label, system_clock())

    token = asyncio.run(_with_store(_settings(args), create))
    print("Admin token (shown once; send it as Authorization: Bearer <token>):")
    print(token)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.store.urls import redacted

    settings = _settings(args)

    async def migrate() -> None:
        # Opening migrates; no token is read or written, so no secret key is needed.
        store = await open_store(settings.db)
        await store.close()

    asyncio.run(migrate())
    print(f"{redacted(settings.db)}: schema up to date")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from app.store.copy import Bar, copy_database, report
    from app.store.urls import is_postgres_url, redacted

    if is_postgres_url(args.source) or not is_postgres_url(args.target):
        print("error: copy goes --from a SQLite file --to a postgresql:// URL", file=sys.stderr)
        return 2
    print(f"copying {args.source} to {redacted(args.target)} in batches of {args.batch:,}")
    try:
        results = asyncio.run(
            copy_database(args.source, args.target, batch=args.batch, progress=Bar(sys.stderr))
        )
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 130
    ok = report(results)
    copied = sum(r.this_run for r in results)
    if not ok:
        print("row counts differ: see the tables marked DIFFERENT", file=sys.stderr)
        return 1
    print(f"done: {copied:,} rows copied this run; every table has the same row count")
    return 0


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    """Re-seal every access token under the current secret key, opening them with the old one
    (docs/secrets.md). Run with the server stopped."""
    if args.old_key_file:
        old = Path(args.old_key_file).read_text().strip()
    else:
        old = args.old_key or ""
    if not old:
        raise ValueError("give the previous secret key: --old-key or --old-key-file")

    async def rotate(store: Store) -> int:
        return await store.configs.seal_tokens(rotate=True)

    settings = _settings(args)
    count = asyncio.run(_with_store(settings, rotate, sealed=True, old_secrets=[old]))
    print(f"{count} access token(s) sealed under the current secret key")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_user_create(args: argparse.Namespace) -> int:
    from app import accounts
    from app.vocabulary import APP_KEY_RE

    email = args.email.strip().lower()
    if "@" not in email or len(email) > 254 or any(ch.isspace() for ch in email):
        raise ValueError(f"--email: not an email address: {args.email!r}")
    apps = None
    if args.apps is not None:
        apps = sorted({a.strip() for a in args.apps.split(",") if a.strip()})
        bad = [a for a in apps if not APP_KEY_RE.fullmatch(a)]
        if bad or not apps:
            raise ValueError(f"--apps: not app keys: {', '.join(bad) or '(none)'}")
    password = _read_password(args)
    problem = accounts.password_problem(password)
    if problem:
        raise ValueError(f"password {problem}")
    password_hash = accounts.hash_password(password)

    async def create(store: Store) -> None:
        await store.users.create_user(email, password_hash, args.role, apps, system_clock())

    asyncio.run(_with_store(_settings(args), create))
    limited = f", limited to {', '.join(apps)}" if apps else ""
    print(f"user {email} ({args.role}{limited}) saved; log in at /admin")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    for name, value, help_text in describe(_settings(args)):
        print(f"{name}={value}\n    {help_text}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from app.server import create_app
    from app.serving import serve

    settings = _settings(args)
    # One process: on SQLite it owns the writer (http-api.md; a second process would be a
    # second writer fighting for the lock). Several nodes share a PostgreSQL database instead.
    # Timeouts and logs: app/serving.py.
    serve(create_app(settings), settings, args.host or settings.host, args.port or settings.port)
    return 0


def cmd_rollups_rebuild(args: argparse.Namespace) -> int:
    from app.reports.rollups import RollupFold

    settings = _settings(args)
    fold = RollupFold(settings.unified_pids, rewrite_retained=settings.retention_rewrite_aggregates)

    async def rebuild(store: Store) -> int:
        return await store.reports.rebuild_rollups(args.app, fold)

    written = asyncio.run(_with_store(settings, rebuild))
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

    counts = asyncio.run(_with_store(settings, run))
    print(f"retention as of {day.isoformat()}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return 0


def _audience_progress(name: str, doing: str, done: int, total: int | None) -> None:
    if total is None:
        print(f"\r{name}: {done} {doing}\033[K", end="", file=sys.stderr)
        return
    width = 30
    filled = width * done // total if total else width
    bar = "#" * filled + "." * (width - filled)
    print(f"\r{name}: [{bar}] {done}/{total} members {doing}\033[K", end="", file=sys.stderr)


def cmd_audiences_sync(args: argparse.Namespace) -> int:
    import httpx

    from app.jobs.audiences import SyncOutcome, describe, sync_audiences
    from app.server import CONNECT_TIMEOUT
    from app.tiktok_ads.client import MarketingClient, limiter_for

    settings = _settings(args)
    progress = _audience_progress if sys.stderr.isatty() else None

    async def run(store: Store) -> list[SyncOutcome]:
        timeout = httpx.Timeout(settings.tiktok_timeout_seconds, connect=CONNECT_TIMEOUT)
        async with httpx.AsyncClient(timeout=timeout) as http:

            def make_api(app_key: str, token: str) -> MarketingClient:
                return MarketingClient(
                    http, settings.tiktok_api_url, token, limiter=limiter_for(app_key)
                )

            return await sync_audiences(
                store, settings, make_api, now=system_clock(), app_key=args.app, progress=progress
            )

    # Sealed: the sync reads the connections' access tokens.
    outcomes = asyncio.run(_with_store(settings, run, sealed=True))
    if progress:
        print(file=sys.stderr)
    for outcome in outcomes:
        print(describe(outcome))
    failed = sum(1 for o in outcomes if o.error)
    print(f"{len(outcomes)} audience(s) synced, {failed} failed")
    # A failed audience resumes at the next run; a script still learns that this one failed.
    return 1 if failed else 0


def cmd_cost_pull(args: argparse.Namespace) -> int:
    """Pull TikTok Ads cost now: one app, or every app with a connection."""
    import httpx

    from app.jobs.cost_pull import CostPuller, PullRefused
    from app.tiktok_ads.connection import PARTNER, PullRecord

    settings = _settings(args)
    if args.days is not None and not 1 <= args.days <= 365:
        print("error: --days must be between 1 and 365", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()

    async def run(store: Store) -> list[tuple[str, PullRecord | str]]:
        if args.app:
            keys = [args.app]
        else:
            keys = [
                a.app_key
                for a in await store.configs.list_apps()
                if await store.configs.get_integration(a.app_key, PARTNER) is not None
            ]
        done: list[tuple[str, PullRecord | str]] = []
        async with httpx.AsyncClient(timeout=settings.tiktok_timeout_seconds) as http:
            puller = CostPuller(store, http, system_clock, settings, scheduled=False)
            for key in keys:
                if tty:
                    print(f"{key}:", file=sys.stderr)
                try:
                    record = await puller.pull(
                        key, days=args.days, trigger="cli", progress=_progress_bar if tty else None
                    )
                except PullRefused as exc:
                    done.append((key, str(exc)))
                    continue
                done.append((key, record))
        return done

    # Sealed: the pull reads the connections' access tokens.
    results = asyncio.run(_with_store(settings, run, sealed=True))
    if not results:
        print("no app has a TikTok Ads connection")
    failed = False
    for key, outcome in results:
        if isinstance(outcome, str):
            failed = True
            print(f"{key}: not pulled: {outcome}")
            continue
        window = f"{outcome.start_date}..{outcome.end_date}" if outcome.start_date else "-"
        print(
            f"{key}: pulled {window}: {outcome.rows} rows ({outcome.changed} changed), "
            f"spend {outcome.spend} {outcome.currency}, {outcome.requests} requests"
            + (f", {outcome.superseded} uploaded rows superseded" if outcome.superseded else "")
        )
        if outcome.error:
            failed = True
            print(f"{key}: error: {outcome.error}")
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m app", description="Gangway")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the web app (one process; one node)")
    serve.add_argument("--host", help="address to listen on (GANGWAY_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (GANGWAY_PORT)")
    serve.add_argument("--db", help=DB_HELP)
    serve.set_defaults(fn=cmd_serve)

    demo = sub.add_parser("demo", help="seed the demo app, its TikTok integration and page")
    demo.add_argument("--db", help=DB_HELP)
    demo.set_defaults(fn=cmd_demo)

    token = sub.add_parser("token", help="admin tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="make an admin token and print it once")
    create.add_argument("--db", help=DB_HELP)
    create.add_argument("--label", default="", help="a note to recognise the token by")
    create.set_defaults(fn=cmd_token_create)

    migrate = sub.add_parser("migrate", help="bring the database's schema up to date")
    migrate.add_argument("--db", help=DB_HELP)
    migrate.set_defaults(fn=cmd_migrate)

    copy = sub.add_parser(
        "copy",
        help="copy a SQLite installation into PostgreSQL (resumable; verifies row counts)",
    )
    copy.add_argument("--from", dest="source", required=True, help="the SQLite database file")
    copy.add_argument("--to", dest="target", required=True, help="a postgresql:// URL")
    copy.add_argument("--batch", type=int, default=5000, help="rows per transaction")
    copy.set_defaults(fn=cmd_copy)
    secrets = sub.add_parser("secrets", help="secrets at rest (docs/secrets.md)")
    secrets_sub = secrets.add_subparsers(dest="secrets_command", required=True)
    rotate = secrets_sub.add_parser(
        "rotate",
        help="re-seal the access tokens under the current GANGWAY_SECRET_KEY (server stopped)",
    )
    rotate.add_argument("--db", help=DB_HELP)
    old = rotate.add_mutually_exclusive_group(required=True)
    old.add_argument("--old-key", help="the previous secret key (shows in the process list)")
    old.add_argument("--old-key-file", help="a file holding the previous secret key")
    rotate.set_defaults(fn=cmd_secrets_rotate)
    user = sub.add_parser("user", help="console users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    user_create = user_sub.add_parser(
        "create", help="create a console user, or give one a new password, role or apps"
    )
    user_create.add_argument("--email", required=True, help="the login name")
    user_create.add_argument("--role", choices=("admin", "viewer"), default="admin")
    user_create.add_argument("--apps", help="limit the user to these app keys (comma list)")
    user_create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    user_create.add_argument("--db", help=DB_HELP)
    user_create.set_defaults(fn=cmd_user_create)
    rollups = sub.add_parser("rollups", help="report rollups")
    rollups_sub = rollups.add_subparsers(dest="rollups_command", required=True)
    rebuild = rollups_sub.add_parser("rebuild", help="recompute the rollups from the raw rows")
    rebuild.add_argument("--app", help="only this app_key (default: every app)")
    rebuild.add_argument("--db", help=DB_HELP)
    rebuild.set_defaults(fn=cmd_rollups_rebuild)

    retention = sub.add_parser("retention", help="user-level data retention (GANGWAY_RETENTION)")
    retention_sub = retention.add_subparsers(dest="retention_command", required=True)
    run = retention_sub.add_parser("run", help="erase user-level data past its retention")
    run.add_argument("--as-of", help="run as of this day, YYYY-MM-DD (default: today, UTC)")
    run.add_argument("--db", help=DB_HELP)
    run.set_defaults(fn=cmd_retention_run)

    cost = sub.add_parser("cost", help="cost from TikTok Ads")
    cost_sub = cost.add_subparsers(dest="cost_command", required=True)
    pull = cost_sub.add_parser(
        "pull", help="pull TikTok Ads cost now (the server does it on a schedule)"
    )
    pull.add_argument("--app", help="only this app_key (default: every connected app)")
    pull.add_argument(
        "--days", type=int, help="pull the last N days (default: the connection's backfill_days)"
    )
    pull.add_argument("--db", help=DB_HELP)
    pull.set_defaults(fn=cmd_cost_pull)

    audiences = sub.add_parser("audiences", help="TikTok custom audiences (tiktok-ads.md 3)")
    audiences_sub = audiences.add_subparsers(dest="audiences_command", required=True)
    sync = audiences_sub.add_parser(
        "sync", help="send TikTok what changed in every audience (the server does it daily)"
    )
    sync.add_argument("--app", help="only this app_key (default: every app)")
    sync.add_argument("--db", help=DB_HELP)
    sync.set_defaults(fn=cmd_audiences_sync)

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
