"""Identifiers: unguessable, URL-safe, one way to make them."""

from __future__ import annotations

import hashlib
import secrets

# 16 random bytes (128 bits) is the spec's floor for page-view and click ids.
ID_BYTES = 16


def new_id() -> str:
    """A fresh id for a touch, install, event, postback or page view (22 URL-safe chars)."""
    return secrets.token_urlsafe(ID_BYTES)


def new_secret() -> str:
    """A credential (sdk key, admin token): longer than an id, shown once."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the store keeps of a credential. Tokens are random, so a plain SHA-256 suffices
    (no salt or slow hash needed: there is no dictionary to attack)."""
    return hashlib.sha256(token.encode()).hexdigest()
