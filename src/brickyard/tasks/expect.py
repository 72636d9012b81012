"""The `expect` kind: check a table against expectations, and act on what fails.

```yaml
- name: check_trips
  kind: expect
  table: silver.taxi_trips
  contract: contracts/silver.taxi_trips.yaml   # default: contracts/<table>.yaml
  expectations:                                # inline ones (added to the contract's)
    - {unique: [trip_id], action: fail}
    - {accepted_values: {column: payment_type, values: [1, 2, 3, 4, 5, 6]}, action: warn}
  max_quarantined: 0.01                        # optional: fail past 1% dropped (or a count)
```

One pass counts, per expectation, the rows that break it (recorded in the run's metrics as
`expectations`: name, check, action, failing_rows, passed). Then:

- `fail` broken: the task fails naming the expectation and the row count; nothing is written.
- `warn` broken: logged and recorded.
- `drop` broken: the offending rows are appended to `<table>__quarantine` (every column as
  text, `_reason`, `_loaded_at`, `_run_id`), then the table is rewritten without them in
  ONE commit (an overwrite of the version that was checked; if another writer committed
  in between, the task fails rather than lose that write). Both commits carry the same
  application-transaction batch, so a re-run after a crash between them quarantines
  nothing twice. An ingest's checkpoint looks through these overwrites. The rows moved
  and their top reasons are recorded for the run summary. Past `max_quarantined` (a share
  of the table's rows, or a count) the task fails and neither table changes.

With `engine: spark` the same rules run on Spark (`brickyard.engines.spark.expect`), with
the same counts, quarantine rows and commits.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, ClassVar

from pydantic import field_validator

from brickyard.core.contract import Contract, Expectation
from brickyard.core.quality import (
    ExpectationFailedError,
    ExpectationResult,
    checked_query,
    contract_rules,
    quarantine_name,
)
from brickyard.errors import BrickyardError, LakeError
from brickyard.lake.names import TableName
from brickyard.tasks.base import CheckContext, TaskContext, TaskKind
from brickyard.tasks.checkpoint import EXPECT_KEY
from brickyard.tasks.explain import explain_problems
from brickyard.tasks.quality import QuarantineLimit

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

class ExpectOptions(QuarantineLimit):
    """The `expect` kind's fields."""

    table: str
    contract: str | None = None
    expectations: tuple[Expectation, ...] = ()

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        try:
            return str(TableName.parse(value))
        except LakeError as exc:
            # from None: pydantic shows this ValueError's text, which is the cause's message (noise)
            raise ValueError(exc.message) from None

    @property
    def contract_ref(self) -> str | None:
        """The contract to load: the one named, else the table's when no inline ones."""
        if self.contract:
            return self.contract
        return None if self.expectations else self.table


class ExpectTask(TaskKind):
    """Expectations over a table with warn / drop / fail actions (see the module doc)."""

    name = "expect"
    Options = ExpectOptions
    needs: ClassVar[frozenset[str]] = frozenset()  # runs on every engine

    def writes(self, options: ExpectOptions) -> list[str]:
        # The checked table is rewritten on `drop`, but it is not produced here: listing it
        # would hide a missing table from `brickyard validate`.
        return [quarantine_name(options.table)]

    def check(self, options: ExpectOptions, context: CheckContext) -> list[str]:
        try:
            contract = _contract(options, context.workspace)
        except BrickyardError as exc:
            return [str(exc)]
        rules = contract_rules(contract, options.expectations)
        if not rules:
            return [f"no expectations for {options.table}: add expectations: or a contract with some"]
        problems = explain_problems(context, f"SELECT * FROM {options.table}", options.table, rules)
        source = checked_query(f"SELECT * FROM {options.table}", rules)
        problems += context.engine.sql_problems(source, f"expectations on {options.table}")
        return problems

    def run(self, options: ExpectOptions, context: TaskContext) -> None:
        log, lake, table = context.log, context.lake, options.table
        contract = _contract(options, context.workspace)
        if contract is not None:
            context.handles_pii(contract.pii_columns)
        rules = contract_rules(contract, options.expectations)
        if not rules:
            log.warning("%s: no expectations to check", table)
            return
        check = context.engine.check_table(table, rules, task=context.task.name)
        version = check.version
        try:
            context.record_read(table, version)
            total, counts = check.count()
            results = [ExpectationResult(r.label, r.check, r.action, c) for r, c in zip(rules, counts, strict=True)]
            context.metrics.rows_in += total
            context.metrics.extra["expectations"] = [r.as_dict() for r in results]
            for result in results:
                if result.failing_rows:
                    log.warning("%s: expectation %s (%s) failed on %d of %d row(s)", table, result.name, result.action, result.failing_rows, total)
            failed = [r for r in results if r.action == "fail" and r.failing_rows]
            if failed:
                raise ExpectationFailedError(
                    "; ".join(f"expectation {r.name!r} failed on {r.failing_rows} row(s)" for r in failed)
                    + f" of {table} (action fail); nothing was written",
                    hint="fix the data upstream, or set the action to drop (quarantine) or warn",
                )
            if not any(r.action == "drop" and r.failing_rows for r in results):
                context.metrics.rows_out += total
                context.metrics.extra["quarantined_rows"] = 0
                context.record_quarantine(quarantine_name(table), 0)
                return
            task_id = f"{context.pipeline.name}.{context.task.name}"
            app = f"brickyard.expect:{task_id}"
            batch = (lake.transaction_version(table, app) or 0) + 1
            metadata = {
                EXPECT_KEY: json.dumps(
                    {"task": task_id, "run_id": context.run_id, "batch": batch, "checked_version": version},
                    separators=(",", ":"),
                )
            }
            written = check.rewrite(
                metadata=metadata, transaction=(app, batch), run_id=context.run_id, loaded_at=datetime.now(UTC),
                max_quarantined=options.max_quarantined,
            )
            if written.quarantine_version is not None:
                context.record_write(quarantine_name(table), written.quarantine_version)
            assert written.version is not None
            context.record_write(table, written.version)
            context.metrics.rows_out += written.rows_good
            context.metrics.extra["quarantined_rows"] = written.rows_bad
            context.record_quarantine(
                quarantine_name(table), written.rows_bad, written.quarantine_version, written.reasons
            )
            log.info("%s: moved %d row(s) to %s (version %d)", table, written.rows_bad, quarantine_name(table), written.version)
        finally:
            check.close()


def _contract(options: ExpectOptions, workspace: Workspace) -> Contract | None:
    reference = options.contract_ref
    if reference is None:
        return None
    return workspace.contract(reference)
