"""OAuth for TikTok Ads (spec tiktok-ads.md section 1): the consent URL and its `state`. Pure.

`state` carries the app key, a random nonce and the time it was made (the injected clock's, so
tests can age it), signed with the secret key (itsdangerous): a state this server did not make
is refused by its signature, one older than an hour by its time, a replayed one by the store,
which keeps the nonces used (single use).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from itsdangerous import BadSignature, URLSafeSerializer

from app.vocabulary import APP_KEY_RE

STATE_MAX_AGE_SECONDS = 3600
_SALT = "gangway.tiktok_ads.oauth-state"
CONSENT_PATH = "/portal/auth"


class BadState(ValueError):
    """The `state` is forged, expired or malformed."""


@dataclass(frozen=True)
class OAuthState:
    app_key: str
    nonce: str


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt=_SALT)


def make_state(secret_key: str, app_key: str, now: float) -> str:
    payload = {"app": app_key, "n": secrets.token_urlsafe(16), "t": int(now)}
    return _serializer(secret_key).dumps(payload)


def read_state(
    secret_key: str, state: str, *, now: float, max_age: int = STATE_MAX_AGE_SECONDS
) -> OAuthState:
    """The app and nonce of a state this server signed less than `max_age` seconds before
    `now`; BadState otherwise."""
    try:
        payload = _serializer(secret_key).loads(state)
    except BadSignature:
        raise BadState("the state was not made by this server") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), int):
        raise BadState("the state is malformed")
    age = now - payload["t"]
    if age > max_age or age < -60:
        raise BadState("the connect link expired; start again")
    app_key, nonce = payload.get("app"), payload.get("n")
    if not isinstance(app_key, str) or not APP_KEY_RE.fullmatch(app_key):
        raise BadState("the state is malformed")
    if not isinstance(nonce, str) or not nonce:
        raise BadState("the state is malformed")
    return OAuthState(app_key, nonce)


def consent_url(base_url: str, app_id: str, redirect_uri: str, state: str) -> str:
    """Where the owner consents: TikTok's portal under the API's base URL."""
    query = urlencode({"app_id": app_id, "redirect_uri": redirect_uri, "state": state})
    return f"{base_url.rstrip('/')}{CONSENT_PATH}?{query}"
