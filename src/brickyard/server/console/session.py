"""Console sessions: a signed cookie naming the token a browser logged in with.

The cookie holds `<token id>.<expiry>.<signature>`, never the token: the signature is an
HMAC-SHA256 with a key made when the server starts (so sessions end when it restarts).
Each request checks that the token is still active, so revoking a token logs its sessions
out at once. The cookie is HttpOnly (scripts cannot read it) and SameSite=Strict (other
sites' pages cannot send it); forms that change something also carry a CSRF field derived
from the session.

>>> sessions = Sessions(secret=b"k" * 32, ttl_seconds=60)
>>> value = sessions.sign("ab12cd34", now=1000.0)
>>> sessions.token_id(value, now=1010.0)
'ab12cd34'
>>> sessions.token_id(value, now=2000.0) is None  # expired
True
>>> sessions.token_id(value.replace("ab12", "ff12"), now=1010.0) is None  # tampered
True
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

COOKIE = "brickyard_session"
DEFAULT_TTL_SECONDS = 12 * 3600


class Sessions:
    """Signs and checks session cookie values."""

    def __init__(self, secret: bytes | None = None, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> None:
        self._secret = secret or secrets.token_bytes(32)
        self.ttl_seconds = ttl_seconds

    def sign(self, token_id: str, *, now: float | None = None) -> str:
        """A cookie value for a session of token `token_id`."""
        expiry = int((now if now is not None else time.time()) + self.ttl_seconds)
        body = f"{token_id}.{expiry}"
        return f"{body}.{self._mac(body)}"

    def token_id(self, value: str | None, *, now: float | None = None) -> str | None:
        """The token id of a valid, unexpired cookie value; None otherwise."""
        if not value or value.count(".") != 2:
            return None
        token_id, expiry, signature = value.split(".")
        if not hmac.compare_digest(signature, self._mac(f"{token_id}.{expiry}")):
            return None
        if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
            return None
        return token_id

    def csrf(self, value: str) -> str:
        """The CSRF field for forms of the session whose cookie is `value`."""
        return self._mac("csrf:" + value)

    def check_csrf(self, value: str, field: str | None) -> bool:
        return bool(field) and hmac.compare_digest(self.csrf(value), field or "")

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode("utf-8"), hashlib.sha256).hexdigest()
