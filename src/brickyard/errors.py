"""The errors brickyard raises, one tree with one root.

    BrickyardError                 exit code 1: the user can fix it
    ├── UsageError                 exit code 2: the command line itself is wrong
    ├── ConfigError                a config file is wrong (file, line, field)
    ├── WorkspaceNotFoundError     no brickyard.yaml here or above
    ├── LakeError                  storage and Delta table problems
    │   ├── TableNotFoundError     a `zone.name` that is not in the lake (with close names)
    │   └── CommitConflictError    another writer committed first; nothing was committed (transient)
    ├── SqlError                   DuckDB rejected a query (its message and position)
    ├── DataFileNotFoundError      a raw file or glob that matches nothing
    └── ModelError                 a model, its training data or its gate (never transient;
        └── TrainingDataError      the rest of its tree is in `brickyard.ml.errors`)

Every error carries a `hint`: the next thing to try. `transient` says whether another
attempt may succeed: True (a dropped connection, a commit conflict), False (a typo, a bad
config, a missing table: retrying cannot help), or None, the root's default: as the
foreign exception it was raised from (`raise SqlError(...) from exc`), terminal without
one. `is_transient` is the one place that decides, for brickyard's errors and foreign
ones alike; the runner retries a task only when it says so. The CLI turns any
`BrickyardError` into one `error:` line and its `exit_code` (with `--debug`, a traceback
with the chain of causes); anything else is a bug and shows a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable


class BrickyardError(Exception):
    """Root of every error brickyard raises on purpose."""

    exit_code: int = 1
    transient: bool | None = None  # None: as its cause (terminal without one); see is_transient

    def __init__(self, message: str, *, hint: str | None = None, transient: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if transient is not None:
            self.transient = transient

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message


class UsageError(BrickyardError):
    """The command was called the wrong way."""

    exit_code = 2
    transient = False


class ConfigError(BrickyardError):
    """A configuration file is invalid; says which file, line and field."""

    transient = False

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
        self.detail = message  # without the file, line and field
        self.file = file
        self.line = line
        self.field = field


class WorkspaceNotFoundError(BrickyardError):
    """No `brickyard.yaml` in the folder or its parents."""

    transient = False


class LakeError(BrickyardError):
    """Reading or writing the lake failed."""


class TableNotFoundError(LakeError):
    """A table name that the lake does not hold."""

    transient = False

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

    transient = False


class ModelError(BrickyardError):
    """A problem with a model, its training data or its promotion: never worth a retry
    (transient False), whatever it was raised from. Defined here, not in `ml/`, because an
    engine that fits a model itself (`Engine.fit_kmeans`) raises it too."""

    transient = False


class TrainingDataError(ModelError):
    """The data given to `train` cannot train the requested model."""


# Foreign exceptions worth another attempt, by (module prefix, class name) anywhere in the
# class's MRO ("*": any module; delta-rs raises from its native module `_internal`): matched
# by name so that this module imports none of these libraries.
_TRANSIENT_FOREIGN = {
    ("duckdb", "IOException"),  # a file or lock that could not be opened, a read that failed
    ("duckdb", "HTTPException"),
    ("duckdb", "TransactionException"),  # a write-write conflict between transactions
    ("*", "CommitFailedError"),  # delta-rs: another writer committed first
    ("sqlalchemy", "OperationalError"),  # connection refused or dropped, database locked
    ("sqlalchemy", "InterfaceError"),
    ("psycopg", "OperationalError"),
    ("py4j", "Py4JNetworkError"),  # the Spark driver's JVM connection dropped
}
# OSErrors that say something about the request, not the moment: retrying cannot help.
_TERMINAL_OS_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError)


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed where `exc` failed: the one place that decides.

    A BrickyardError says so with `transient` (None: as its `__cause__`). A foreign
    exception is transient when it is an I/O or connection error (OSError, except a missing
    path, a permission or a path of the wrong type), a DuckDB I/O or transaction conflict,
    a Delta commit conflict, SQLite's "database is locked" / "busy", or a SQL driver's
    operational error; otherwise as its `__cause__`. Anything else (a syntax error, a
    missing column, a bad option, an estimator that fails) is terminal.

    >>> is_transient(SqlError("Parser Error: syntax error at or near SELEC"))
    False
    >>> is_transient(CommitConflictError("another writer committed first"))
    True
    >>> is_transient(ConnectionResetError()), is_transient(FileNotFoundError())
    (True, False)
    """
    if isinstance(exc, BrickyardError):
        if exc.transient is not None:
            return exc.transient
        return exc.__cause__ is not None and is_transient(exc.__cause__)
    if isinstance(exc, OSError):
        engine_kind = _DUCKDB_TEXT.match(str(exc))  # DuckDB's Arrow reader raises its errors so
        if engine_kind is not None:
            return engine_kind.group(1) in _TRANSIENT_DUCKDB_KINDS and not _says_terminal(exc)
        return not isinstance(exc, _TERMINAL_OS_ERRORS) and not _says_terminal(exc)
    if _named_transient(exc):
        return True
    return exc.__cause__ is not None and is_transient(exc.__cause__)


# An I/O or driver error whose text names a mistake rather than a passing state.
_TERMINAL_TEXTS = ("authentication failed", "no password supplied", "does not exist", "no such table",
                   "no such column", "syntax error", "no such file", "no files found", "permission denied")
# DuckDB's error kinds, as its messages begin (`IO Error: ...`), that a retry may cure.
_DUCKDB_TEXT = re.compile(r"((?:[A-Z][A-Za-z]* )*?[A-Z][A-Za-z]*) Error: ")
_TRANSIENT_DUCKDB_KINDS = {"IO", "HTTP", "TransactionContext"}


def _says_terminal(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(words in text for words in _TERMINAL_TEXTS)


def _named_transient(exc: BaseException) -> bool:
    for cls in type(exc).__mro__:
        module = cls.__module__.split(".", 1)[0].lstrip("_")
        if module == "sqlite3" and cls.__name__ == "OperationalError":
            text = str(exc).lower()
            return "locked" in text or "busy" in text
        if (module, cls.__name__) in _TRANSIENT_FOREIGN or ("*", cls.__name__) in _TRANSIENT_FOREIGN:
            return not _says_terminal(exc)
    return False


def suggest(word: str, choices: Iterable[str], *, cutoff: float = 0.5) -> str | None:
    """Return a 'did you mean' phrase for the closest choices, or None.

    `cutoff` (0 to 1) is how alike a choice must be; raise it where the choices are few
    and a loose match would mislead (a made-up kind name is not a typo of a real one).
    """
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=cutoff)
    return f"did you mean {' or '.join(close)}?" if close else None
