"""The errors brickyard raises, one tree with one root.

    BrickyardError                 exit code 1: the user can fix it
    ├── UsageError                 exit code 2: the command line itself is wrong
    ├── ConfigError                a config file is wrong (file, line, field)
    ├── WorkspaceNotFoundError     no brickyard.yaml here or above
    ├── LakeError                  storage and Delta table problems
    │   ├── TableNotFoundError     a `zone.name` that is not in the lake (with close names)
    │   └── CommitConflictError    another writer committed first; nothing was committed (transient)
    ├── SqlError                   DuckDB rejected a query (its message and position)
    └── DataFileNotFoundError      a raw file or glob that matches nothing

Every error carries a `hint`: the next thing to try. `transient` marks errors worth a
retry (a dropped connection), as opposed to terminal ones (a typo). The CLI turns any
`BrickyardError` into one `error:` line and its `exit_code`; anything else is a bug and
shows a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BrickyardError(Exception):
    """Root of every error brickyard raises on purpose."""

    exit_code: int = 1
    transient: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class UsageError(BrickyardError):
    """The command was called the wrong way."""

    exit_code = 2


class ConfigError(BrickyardError):
    """A configuration file is invalid; says which file, line and field."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ":".join(str(part) for part in (file, line) if part is not None)
        prefix = ": ".join(part for part in (where, field) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        self.file = file
        self.line = line
        self.field = field


class WorkspaceNotFoundError(BrickyardError):
    """No `brickyard.yaml` in the folder or its parents."""


class LakeError(BrickyardError):
    """Reading or writing the lake failed."""


class TableNotFoundError(LakeError):
    """A table name that the lake does not hold."""

    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
        hint = (
            f"did you mean {', '.join(close)}?"
            if close
            else "run `brickyard tables` to list the lake's tables"
        )
        super().__init__(f"table {name!r} does not exist in the lake", hint=hint)
        self.name = name
        self.suggestions = close


class CommitConflictError(LakeError):
    """Another writer committed to the table between this writer's read and its commit
    (the same application transaction, the table's creation, a schema change), so nothing
    was committed. Read the table again and plan the write again."""

    transient = True


class SqlError(BrickyardError):
    """The SQL engine rejected a query."""


class DataFileNotFoundError(BrickyardError):
    """A raw file or glob in the lake that matches nothing."""


def suggest(word: str, choices: Iterable[str], *, cutoff: float = 0.5) -> str | None:
    """Return a 'did you mean' phrase for the closest choices, or None.

    `cutoff` (0 to 1) is how alike a choice must be; raise it where the choices are few
    and a loose match would mislead (a made-up kind name is not a typo of a real one).
    """
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f"did you mean {' or '.join(close)}?" if close else None
