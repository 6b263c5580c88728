"""Secrets at rest: TikTok access tokens are kept encrypted, under a key derived from the
secret key, so a copied database file alone reveals no token.

Fernet (AES-128-CBC with HMAC-SHA256, from the maintained `cryptography` library) seals each
token; its key is derived from `GANGWAY_SECRET_KEY` with HKDF-SHA256, bound to this one purpose
(`info`), so the secret key's other uses (signed cookies) never share a key with it. A sealed
value is stored as `gw1:<fernet token>`; a value without the prefix is a clear token written
before sealing existed, read as it is and sealed at the next start (`ConfigStore.seal_tokens`).

Rotation (`python -m app secrets rotate`, docs/secrets.md): a `TokenSealer` made with the new
key and the old ones opens what any of them sealed and seals with the new key only.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.settings import Settings

PREFIX = "gw1:"
_SALT = b"gangway secret-at-rest salt v1"
_INFO = b"gangway integration access tokens v1"


class SealError(Exception):
    """A sealed value that no key given can open (the secret key changed without rotation)."""


def derive_key(secret: str) -> bytes:
    """The Fernet key (url-safe base64 of 32 bytes) for tokens, derived from `secret`."""
    if not secret:
        raise ValueError("an empty secret key cannot seal anything")
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


class TokenSealer:
    """Seals with `secret`'s key; opens what `secret`'s or any of `old_secrets`' key sealed."""

    def __init__(self, secret: str, old_secrets: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([Fernet(derive_key(s)) for s in (secret, *old_secrets)])

    def seal(self, token: str) -> str:
        return PREFIX + self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, stored: str) -> str:
        """The clear token; a value from before sealing is answered as it is."""
        if not is_sealed(stored):
            return stored
        try:
            return self._fernet.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SealError(
                "an access token cannot be opened with GANGWAY_SECRET_KEY: the key changed "
                "without `python -m app secrets rotate` (docs/secrets.md)"
            ) from exc

    def reseal(self, stored: str) -> str:
        """`stored` sealed under the current key (a clear one sealed, an old key's re-sealed)."""
        return self.seal(self.open(stored))


def token_sealer(settings: Settings, old_secrets: Sequence[str] = ()) -> TokenSealer:
    """The sealer of a running Gangway: the secret key's (the configured one, else the one
    kept in the data directory)."""
    return TokenSealer(settings.with_secret().secret_key.reveal(), old_secrets)
