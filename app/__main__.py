"""Command line: `python -m app serve|demo|token create|user create|settings`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import getpass
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

    asyncio.run(_with_store(_settings(args).db, create))
    limited = f", limited to {', '.join(apps)}" if apps else ""
    print(f"user {email} ({args.role}{limited}) saved; log in at /admin")
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
    user_create.add_argument("--db", help="database file (GANGWAY_DB)")
    user_create.set_defaults(fn=cmd_user_create)

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
