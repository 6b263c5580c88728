"""Console accounts: roles, per-app limits and password hashes (console.md section 1). Pure.

Passwords are hashed with Argon2id (memory-hard) at OWASP's first recommended setting: 19 MiB,
two passes, one lane. The parameters live in each hash, so raising them later rehashes every
account at its next good login (`needs_rehash`). A clear password is never stored or logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
MIN_PASSWORD = 10
MAX_PASSWORD = 1024

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Checked when an account does not exist, so that a wrong name costs what a wrong password
# costs: the time of the answer does not tell which names have accounts.
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"must be at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"must be at most {MAX_PASSWORD} characters"
    return None


@dataclass(frozen=True)
class Owner:
    """Who is asking, on the owner's side: an admin token, or a console user.

    `apps` None means every app; a user limited with `--apps` sees those only, on every screen
    and in every owner API answer. An admin token is an unlimited admin."""

    role: str
    apps: frozenset[str] | None
    username: str | None = None  # None: an admin token

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN

    @property
    def is_full_admin(self) -> bool:
        """An admin of every app: the only one who may see users and tokens."""
        return self.role == ADMIN and self.apps is None

    def sees(self, app_key: str) -> bool:
        return self.apps is None or app_key in self.apps

    def visible(self, app_keys: Iterable[str]) -> list[str]:
        return [k for k in app_keys if self.sees(k)]


TOKEN_OWNER = Owner(role=ADMIN, apps=None)
