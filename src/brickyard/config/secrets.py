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
