"""Identifiers: unguessable, URL-safe, one way to make them."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading

# 16 random bytes (128 bits) is the spec's floor for page-view and click ids.
ID_BYTES = 16
# Ids are cut from a pool of the system's random bytes, refilled 4 KiB at a time: one
# getrandom() call per 256 ids rather than one per id (on the event loop's thread each call
# also gave the GIL away and waited to get it back). The bytes are os.urandom's, as before.
_POOL_BYTES = 4096


class _RandomPool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._at + n > len(self._bytes):
                self._bytes, self._at = os.urandom(_POOL_BYTES), 0
            chunk = self._bytes[self._at : self._at + n]
            self._at += n
            return chunk

    def forget(self) -> None:
        # A forked child must not hand out the ids its parent will hand out too.
        self._lock = threading.Lock()
        self._bytes, self._at = b"", 0


_pool = _RandomPool()
os.register_at_fork(after_in_child=_pool.forget)


def new_id() -> str:
    """A fresh id for a touch, install, event, postback or page view (22 URL-safe chars)."""
    return base64.urlsafe_b64encode(_pool.take(ID_BYTES)).rstrip(b"=").decode("ascii")


def new_secret() -> str:
    """A credential (sdk key, admin token): longer than an id, shown once."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps of a credential. Tokens are random, so a plain SHA-256 suffices
    (no salt or slow hash needed: there is no dictionary to attack)."""
    return hashlib.sha256(token.encode()).hexdigest()
