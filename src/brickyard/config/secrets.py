"""Secret references: config holds `${env:NAME}`, never the secret itself.

A reference is resolved only when the value is used (`resolve`), and anything shown to a
person goes through `mask` first.

>>> import os; os.environ["DEMO_KEY"] = "s3cr3t"
>>> resolve("key=${env:DEMO_KEY}")
'key=s3cr3t'
>>> mask("postgresql://app:${env:PG_PASSWORD}@db/app")
'postgresql://app:***@db/app'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from brickyard.errors import ConfigError

REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]+:)(?P<password>[^@\s]+)(?=@)")
SECRET_KEY_WORDS = ("key", "secret", "token", "password", "sas", "credential")


def resolve(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every `${env:NAME}` in `value` with that environment variable.

    Raises:
        ConfigError: a referenced variable is not set.
    """
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"secret reference ${{env:{name}}} is not set",
                hint=f"export {name}=... before running brickyard",
            )
        return env[name]

    return REFERENCE.sub(substitute, value)


def is_reference(value: str) -> bool:
    """True when the whole value is one `${env:NAME}` reference."""
    return REFERENCE.fullmatch(value.strip()) is not None


def looks_secret(key: str) -> bool:
    """True for option names that hold credentials (account_key, sas_token, password...)."""
    lowered = key.lower()
    return any(word in lowered for word in SECRET_KEY_WORDS)


def mask(value: str) -> str:
    """Hide a URL's password and any resolved secret; references stay visible as `***`."""
    masked = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}***", value)
    return REFERENCE.sub("***", masked)


# SECRET_KEY_WORDS as whole words; "key" only as a suffix (see _names_a_secret)
_SECRET_WORDS = (frozenset(SECRET_KEY_WORDS) - {"key"}) | {"passwd", "pwd", "credentials"}


def redacted(value: Any, name: str = "") -> Any:
    """`value` (config as read) fit to show in an error: the value of a credential-named
    field (`account_key`, `sas_token`, `password`, a webhook's `secret`...) as `***` unless it
    is a reference, URL passwords masked, mappings and lists walked.

    >>> redacted({"account_name": "acct", "account_key": "abc==", "url": "postgresql://u:pw@db/x"})
    {'account_name': 'acct', 'account_key': '***', 'url': 'postgresql://u:***@db/x'}
    >>> redacted(["customer_id"], "keys")
    ['customer_id']
    """
    if isinstance(value, Mapping):
        return {key: redacted(item, str(key)) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redacted(item, name) for item in value]
    if isinstance(value, str):
        return "***" if _names_a_secret(name) and not is_reference(value) else mask(value)
    return value


def _names_a_secret(name: str) -> bool:
    """A credential's field name: one with a word such as secret, token or password, or a
    name ending in `key` after a prefix (`account_key`, `apikey`; not `key` or `keys`)."""
    lowered = name.lower()
    words = set(re.split(r"[^a-z0-9]+", lowered))
    return bool(words & _SECRET_WORDS) or (lowered.endswith("key") and lowered != "key")
