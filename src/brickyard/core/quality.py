"""Data-quality expectations as SQL, and the split of a checked stream of rows into the
rows to write and the rows to quarantine. Shared by the `ingest`, `sql` and `expect` kinds and by every engine's checked writes.

An expectation becomes a `Rule`: a SQL boolean that is TRUE when a row breaks it and a SQL
text that says why, with the bad value. `checked_query` wraps any SELECT so each row also
carries one flag per rule and a `_reason` made of the broken `drop` rules; a `Splitter`
then streams the Arrow batches of that query, yielding the good rows (to be written) and
keeping the bad ones (to be quarantined), while counting every rule's failures.

Quarantine is reported, never silent: each kind records, per commit, the rows it moved to
`<target>__quarantine` and their most frequent `_reason` texts (`TaskContext.record_quarantine`;
the run summary shows them). `max_quarantined` on a task (`QuarantineLimit`) is a share of
the checked rows (a number below 1) or a count of rows (a whole number); past it the task
fails like a broken `fail` expectation: nothing is committed, neither the good rows nor
the quarantine, and the error gives the count, the share and the top reasons.

Semantics (also in docs): `not_null` fails on NULL; `range` and `accepted_values` pass
NULL (as SQL CHECK constraints do; add `not_null` to forbid it); a `sql` predicate passes
only where it is TRUE (NULL fails); `unique` fails every row whose key occurs more than once.

    >>> from brickyard.core.contract import Expectation
    >>> rule = compile_rule(Expectation(range={"column": "fare", "min": 0}, action="drop"))
    >>> rule.fails
    'coalesce(("fare" < 0), false)'
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from brickyard.core.contract import Contract, Expectation
from brickyard.core.pii import WITHHELD
from brickyard.errors import BrickyardError, SqlError

if TYPE_CHECKING:
    import pyarrow as pa

QUARANTINE_SUFFIX = "__quarantine"
REASON = "__by_reason"
FLAG = "__by_rule_{}"
REASON_COLUMN = "_reason"
RUN_ID_COLUMN = "_run_id"
LOADED_AT_COLUMN = "_loaded_at"
SOURCE_FILE_COLUMN = "_source_file"
LINE_COLUMN = "_line"
MAX_VALUE_CHARS = 100
TOP_REASONS = 3  # the reasons a quarantine summary keeps, most frequent first


class ExpectationFailedError(BrickyardError):
    """An expectation with action `fail` found rows that break it; nothing was written."""


class QuarantineLimitError(BrickyardError):
    """More rows would be quarantined than the task's `max_quarantined`; nothing was written."""


def limit_text(limit: int | float) -> str:
    """`max_quarantined` as a person reads it: `0.01 (1%)` or `5 rows`."""
    if isinstance(limit, float):
        return f"{limit:g} ({percent(limit)})"
    return f"{limit} row{'' if limit == 1 else 's'}"


def percent(share: float) -> str:
    """0.4 -> '40%', 0.0123 -> '1.23%'."""
    return f"{share * 100:.3g}%"


def reasons_text(reasons: Sequence[tuple[str, int]]) -> str:
    """`a (2), b (1)`: reasons with their row counts."""
    return ", ".join(f"{reason} ({count})" for reason, count in reasons)


def over_limit(limit: int | float | None, rows_in: int, rows_bad: int) -> bool:
    """Whether `rows_bad` of `rows_in` rows is past `max_quarantined` (a share or a count)."""
    if limit is None or rows_bad == 0:
        return False
    if isinstance(limit, float):
        return rows_bad > limit * rows_in
    return rows_bad > limit


def check_quarantine_limit(
    limit: int | float | None, *, rows_in: int, rows_bad: int, reasons: Sequence[tuple[str, int]], target: str
) -> None:
    """Raise `QuarantineLimitError` when the rows to quarantine are past `limit`."""
    if not over_limit(limit, rows_in, rows_bad):
        return
    assert limit is not None
    share = percent(rows_bad / rows_in) if rows_in else "all"
    quarantine = quarantine_name(target)
    raise QuarantineLimitError(
        f"{rows_bad} of {rows_in} rows ({share}) of {target} would be quarantined, past "
        f"max_quarantined {limit_text(limit)}; nothing was written to {target} or {quarantine} "
        f"(top reasons: {reasons_text(reasons)})",
        hint=f"fix the data, or raise max_quarantined on the task to let the other rows land "
        f"and these go to {quarantine}",
    )


def quarantine_name(table: str) -> str:
    """The quarantine table beside `table`: `zone.name__quarantine`."""
    return f"{table}{QUARANTINE_SUFFIX}"


def quote(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """A SQL literal for a YAML scalar (strings quoted, booleans as true/false)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def shown(expression: str) -> str:
    """SQL text showing a value in a reason: quoted, shortened, NULL as NULL."""
    text = f"CAST({expression} AS VARCHAR)"
    return f"coalesce('''' || left({text}, {MAX_VALUE_CHARS}) || '''', 'NULL')"


@dataclass(frozen=True)
class Rule:
    """One expectation compiled to SQL over the columns of the checked rows."""

    expectation: Expectation
    fails: str
    reason: str

    @property
    def label(self) -> str:
        return self.expectation.label

    @property
    def action(self) -> str:
        return self.expectation.action

    @property
    def check(self) -> str:
        return self.expectation.check

    @property
    def columns(self) -> list[str]:
        """The columns the rule names (empty for a `sql` predicate)."""
        exp = self.expectation
        if exp.not_null is not None:
            return [exp.not_null]
        if exp.unique is not None:
            return list(exp.unique)
        if exp.range is not None:
            return [exp.range.column]
        if exp.accepted_values is not None:
            return [exp.accepted_values.column]
        return []


def compile_rule(expectation: Expectation, pii_columns: Collection[str] = ()) -> Rule:
    """The SQL for one expectation. The reason of a rule on a column in `pii_columns`
    names the column but withholds its value."""
    label = "'" + expectation.label.replace("'", "''") + "'"

    def value(expression: str, column: str) -> str:
        return literal(WITHHELD) if column in pii_columns else shown(expression)

    if expectation.not_null is not None:
        column = quote(expectation.not_null)
        return Rule(expectation, f"({column} IS NULL)", f"{label} || ': value is NULL'")
    if expectation.range is not None:
        check = expectation.range
        column = quote(check.column)
        bounds = []
        if check.min is not None:
            bounds.append(f"{column} < {literal(check.min)}")
        if check.max is not None:
            bounds.append(f"{column} > {literal(check.max)}")
        fails = f"coalesce(({' OR '.join(bounds) or 'false'}), false)"
        return Rule(expectation, fails, f"{label} || ': ' || {value(column, check.column)}")
    if expectation.accepted_values is not None:
        values = expectation.accepted_values.values
        column = quote(expectation.accepted_values.column)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numbers:
            listed = ", ".join(f"CAST({literal(v)} AS DOUBLE)" for v in values)
            fails = (
                f"coalesce(TRY_CAST({column} AS DOUBLE) NOT IN ({listed}), {column} IS NOT NULL)"
            )
        else:
            listed = ", ".join(literal(v if isinstance(v, str) else json.dumps(v)) for v in values)
            fails = f"coalesce(CAST({column} AS VARCHAR) NOT IN ({listed}), false)"
        return Rule(expectation, fails, f"{label} || ': ' || {value(column, expectation.accepted_values.column)}")
    if expectation.unique is not None:
        keys = ", ".join(quote(key) for key in expectation.unique)
        fails = f"(count(*) OVER (PARTITION BY {keys}) > 1)"
        shown_keys = " || ', ' || ".join(value(quote(key), key) for key in expectation.unique)
        return Rule(expectation, fails, f"{label} || ': duplicate key ' || {shown_keys}")
    predicate = expectation.sql or "true"
    return Rule(expectation, f"(NOT coalesce(({predicate}), false))", label)


def contract_rules(contract: Contract | None, expectations: Iterable[Expectation] = ()) -> list[Rule]:
    """Rules from inline expectations plus a contract's expectations and its
    `nullable: false` columns (as `not_null`, action `drop`); reasons withhold the values
    of the contract's pii columns."""
    pii_columns = contract.pii_columns if contract is not None else []
    found = [compile_rule(e, pii_columns) for e in expectations]
    if contract is not None:
        found += [compile_rule(e, pii_columns) for e in contract.expectations]
        for column in contract.columns:
            if not column.nullable:
                found.append(compile_rule(Expectation(not_null=column.name, action="drop")))
    return found


def checked_query(
    source: str,
    rules: Sequence[Rule],
    *,
    gate: str | None = None,
    pre_reason: str | None = None,
) -> str:
    """Wrap a SELECT so each row carries `__by_rule_<i>` (TRUE when it breaks rule i) and
    `__by_reason` (why it must be quarantined, NULL for a good row).

    `gate` limits rule evaluation to rows where it is TRUE; `pre_reason` is an earlier
    reason (e.g. a value that did not parse) that comes first in `__by_reason`.
    """
    flags = []
    for index, rule in enumerate(rules):
        expression = f"({gate}) AND {rule.fails}" if gate else rule.fails
        flags.append(f"coalesce({expression}, false) AS {FLAG.format(index)}")
    parts = [pre_reason] if pre_reason else []
    parts += [
        f"CASE WHEN {FLAG.format(index)} THEN {rule.reason} END"
        for index, rule in enumerate(rules)
        if rule.action == "drop"
    ]
    dropping = [FLAG.format(i) for i, rule in enumerate(rules) if rule.action == "drop"]
    if pre_reason:
        dropping.insert(0, f"({pre_reason}) IS NOT NULL")
    # The text is built only for the rows that need it (CASE evaluates lazily).
    reason = (
        f"CASE WHEN {' OR '.join(dropping)} THEN NULLIF(concat_ws('; ', {', '.join(parts)}), '') END"
        if parts
        else "CAST(NULL AS VARCHAR)"
    )
    flagged = f"SELECT *{''.join(', ' + f for f in flags)} FROM ({source}) AS __by_src"
    return f"SELECT *, {reason} AS {REASON} FROM ({flagged}) AS __by_flags"


@dataclass
class ExpectationResult:
    """How one expectation fared on one task attempt (recorded in the run's metrics)."""

    name: str
    check: str
    action: str
    failing_rows: int

    @property
    def passed(self) -> bool:
        return self.failing_rows == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "check": self.check,
            "action": self.action,
            "failing_rows": self.failing_rows,
            "passed": self.passed,
        }


BadRows = Callable[["pa.RecordBatch", "pa.Array"], "pa.RecordBatch"]


@dataclass
class Splitter:
    """Streams the batches of a `checked_query`: yields good rows, keeps bad ones.

    `good_columns` are the columns written; `finish_good` may add columns to a good batch
    (e.g. `_loaded_at`); `bad_rows(batch, mask)` builds the quarantine rows of a batch.
    When a `fail` rule is broken, good rows stop being yielded, the rest of the stream is
    only counted, and `ExpectationFailedError` is raised at its end, so the write that
    consumes the stream commits nothing; so is `QuarantineLimitError` when the bad rows are
    past `max_quarantined`.
    """

    rules: Sequence[Rule]
    good_columns: Sequence[str]
    bad_rows: BadRows
    target: str
    finish_good: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None
    counted: Sequence[ExpectationResult] = ()
    max_quarantined: int | float | None = None
    counts: list[int] = field(init=False)
    rows_in: int = field(init=False, default=0)
    rows_good: int = field(init=False, default=0)
    bad: list[pa.RecordBatch] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.rules)

    @property
    def rows_bad(self) -> int:
        return sum(batch.num_rows for batch in self.bad)

    @property
    def failing(self) -> bool:
        return any(r.failing_rows and r.action == "fail" for r in self.results())

    def split(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """The good rows of `batches`, batch by batch (raises at the end on a `fail`)."""
        import pyarrow.compute as pc

        for batch in batches:
            self.rows_in += batch.num_rows
            for index in range(len(self.rules)):
                self.counts[index] += int(pc.sum(batch.column(FLAG.format(index))).as_py() or 0)
            if self.failing:
                continue
            if REASON not in batch.schema.names:  # no rules: every row is good
                good = batch.select(list(self.good_columns))
                good = self.finish_good(good) if self.finish_good is not None else good
                self.rows_good += good.num_rows
                if good.num_rows:
                    yield good
                continue
            is_bad = pc.is_valid(batch.column(REASON))
            bad_count = int(pc.sum(is_bad).as_py() or 0)
            good = batch.select(list(self.good_columns))
            if bad_count:
                self.bad.append(self.bad_rows(batch, is_bad))
                good = good.filter(pc.invert(is_bad))
            if self.finish_good is not None:
                good = self.finish_good(good)
            self.rows_good += good.num_rows
            if good.num_rows:
                yield good
        self.raise_on_failure()

    def reasons(self) -> list[tuple[str, int]]:
        """The most frequent `_reason` texts of the bad rows, with their counts."""
        import pyarrow.compute as pc

        counts: dict[str, int] = {}
        for batch in self.bad:
            for item in pc.value_counts(batch.column(REASON_COLUMN)).to_pylist():
                counts[item["values"]] = counts.get(item["values"], 0) + item["counts"]
        return top_reasons(counts.items())

    def raise_on_failure(self) -> None:
        """Raise `ExpectationFailedError` when a `fail` rule was broken, and
        `QuarantineLimitError` when the bad rows are past `max_quarantined`."""
        broken = [
            f"{r.name!r} failed on {r.failing_rows} row{'s' if r.failing_rows != 1 else ''}"
            for r in self.results()
            if r.action == "fail" and r.failing_rows
        ]
        if broken:
            raise ExpectationFailedError(
                f"expectation {'; '.join(broken)} of {self.target} (action fail); nothing was written",
                hint="fix the data, or set the expectation's action to drop (quarantine) or warn",
            )
        if over_limit(self.max_quarantined, self.rows_in, self.rows_bad):
            check_quarantine_limit(
                self.max_quarantined, rows_in=self.rows_in, rows_bad=self.rows_bad,
                reasons=self.reasons(), target=self.target,
            )

    def results(self) -> list[ExpectationResult]:
        """One result per rule (the counted ones first)."""
        return [*self.counted] + [
            ExpectationResult(rule.label, rule.check, rule.action, count)
            for rule, count in zip(self.rules, self.counts, strict=True)
        ]

    def log_warnings(self, log: logging.Logger) -> None:
        """Log every broken `warn` (and `drop`) rule with its row count."""
        for result in self.results():
            if result.failing_rows and result.action != "fail":
                verb = "quarantined" if result.action == "drop" else "found"
                log.warning(
                    "%s: expectation %s %s %d row(s)",
                    self.target,
                    result.name,
                    verb,
                    result.failing_rows,
                )


class StreamGuard:
    """Keeps the first exception raised by a stream handed to a writer, and re-raises it
    instead of the writer's own error: pyarrow and delta-rs turn an exception raised inside
    a Python stream into their error types, with only its text. On exit it also closes the
    stream, so a prefetching thread stops even when the writer gave up half-way.

        guard = StreamGuard()
        with guard:
            lake.write(table, pa.RecordBatchReader.from_batches(schema, guard.wrap(batches)))
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self._streams: list[Any] = []

    def wrap(self, batches: Iterable[Any]) -> Iterator[Any]:
        def guarded() -> Iterator[Any]:
            try:
                yield from batches
            except BaseException as exc:
                if self.error is None:
                    self.error = exc
                raise

        stream = guarded()
        self._streams.append(stream)
        return stream

    def __enter__(self) -> StreamGuard:
        return self

    def __exit__(self, kind: Any, value: BaseException | None, traceback: Any) -> None:
        for stream in self._streams:
            try:
                stream.close()
            except (ValueError, RuntimeError):  # still running on a writer's thread
                pass
        if value is not None and self.error is not None and value is not self.error:
            # from None: the writer's own error, re-raised; the stream failed because of it (noise)
            raise self.error.with_traceback(self.error.__traceback__) from None


def prefetched(batches: Iterable[Any], depth: int = 3) -> Iterator[Any]:
    """Iterate `batches` on a helper thread, `depth` items ahead, so that producing the next
    batch (DuckDB, which releases the GIL) overlaps with consuming this one (delta-rs
    encoding Parquet). An exception in the producer is re-raised here, in order."""
    import queue
    import threading

    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(("error", exc))

    worker = threading.Thread(target=produce, name="brickyard-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def text_rows(
    batch: pa.RecordBatch,
    mask: pa.Array,
    columns: Sequence[str],
    *,
    run_id: str,
    loaded_at: Any,
) -> pa.RecordBatch:
    """Quarantine rows of a table (sql and expect tasks): every column as text, the table's
    own `_source_file`/`_loaded_at` kept, plus `_reason` and `_run_id`."""
    import pyarrow as pa

    rows = batch.filter(mask)
    arrays: dict[str, pa.Array] = {}
    for name in columns:
        if name in (REASON_COLUMN, RUN_ID_COLUMN, LOADED_AT_COLUMN):
            continue
        arrays[name] = as_text(rows.column(name))
    arrays[REASON_COLUMN] = rows.column(REASON)
    stamp = loaded_at_array(loaded_at, rows.num_rows)
    if LOADED_AT_COLUMN in columns:
        kept = rows.column(LOADED_AT_COLUMN)
        if pa.types.is_timestamp(kept.type):
            import pyarrow.compute as pc

            stamp = pc.coalesce(kept.cast(stamp.type), stamp)
    arrays[LOADED_AT_COLUMN] = stamp
    arrays[RUN_ID_COLUMN] = pa.array([run_id] * rows.num_rows, pa.string())
    return pa.RecordBatch.from_pydict(arrays)


def as_text(array: pa.Array) -> pa.Array:
    """Any Arrow array as strings (nested values as JSON text)."""
    import pyarrow as pa

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        return array.cast(pa.string())
    try:
        return array.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        values = [None if v is None else json.dumps(v, default=str) for v in array.to_pylist()]
        return pa.array(values, pa.string())


def loaded_at_array(stamp: Any, rows: int) -> pa.Array:
    """`rows` copies of a UTC time as a zone-less timestamp (the `_loaded_at` of a batch;
    zone-less so that every client reads it without time-zone libraries)."""
    import numpy as np
    import pyarrow as pa

    micros = round(stamp.timestamp() * 1_000_000)
    return pa.array(np.full(rows, micros, dtype=np.int64)).cast(pa.timestamp("us"))


def top_reasons(counts: Any, limit: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The `limit` most frequent (reason, count) pairs; ties in the reason's order."""
    return sorted(((str(r), int(c)) for r, c in counts), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass
class CheckedWrite:
    """What a checked write did: counts, per-rule results, and the versions it committed."""

    rows_in: int
    rows_good: int
    rows_bad: int
    results: list[ExpectationResult]
    version: int | None
    quarantine_version: int | None
    reasons: list[tuple[str, int]] = field(default_factory=list)  # top `_reason` texts, counted


def require_query_columns(columns: Sequence[str], required: Sequence[str], where: str) -> None:
    """Raise SqlError when the query's `columns` lack one that keys/partition_by name."""
    for column in required:
        if column not in columns:
            raise SqlError(
                f"{where}: the query has no column {column!r} (named by keys/partition_by)",
                hint=f"its columns: {', '.join(columns)}",
            )
