"""Training data: read at pinned Delta versions, checked, and split reproducibly.

`load` reads a lake table (or runs a SQL query) and returns the frame with the exact Delta
version of every table it read. Given those versions again (`pinned`), it reads the same
snapshots through Delta time travel, which is how `evaluate` and `reproduce` rebuild the
data a model was trained on. A query's tables are pinned by opening them as DuckDB views of
the pinned snapshots before the query runs; for an exactly reproducible split a query
should `ORDER BY` (DuckDB does not promise row order after joins or aggregates).

`prepare` checks the columns (missing ones with close names, all-null ones, a label with
one class, too few rows) and `split_indices` makes the seeded held-out split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from brickyard.errors import suggest
from brickyard.ml.errors import TrainingDataError
from brickyard.ml.spec import DataSpec, Problem, SplitSpec, TrainSpec

if TYPE_CHECKING:
    import pandas as pd

    from brickyard.engines.base import Engine
    from brickyard.workspace import Workspace

MIN_ROWS = 10
MAX_CLASSES_FOR_INT_LABEL = 20


@dataclass
class Loaded:
    """A frame and the Delta version of each lake table it came from."""

    frame: pd.DataFrame
    reads: dict[str, int]
    source: str
    # the columns used as features when none are listed (a training set's: not its keys
    # or timestamp); None: every column but the label and dates/times
    features: list[str] | None = None


@dataclass
class Prepared:
    """Checked training data: features, label, column kinds, and the held-out split."""

    frame: pd.DataFrame
    features: list[str]
    numeric: list[str]
    categorical: list[str]
    label: str | None
    problem: Problem
    reads: dict[str, int]
    train_index: np.ndarray = field(repr=False)
    test_index: np.ndarray = field(repr=False)

    @property
    def X(self) -> pd.DataFrame:  # noqa: N802 - the usual name
        return self.frame[self.features]

    @property
    def y(self) -> pd.Series | None:
        return None if self.label is None else self.frame[self.label]

    def train(self) -> tuple[pd.DataFrame, Any]:
        return self._rows(self.train_index)

    def test(self) -> tuple[pd.DataFrame, Any]:
        return self._rows(self.test_index)

    def _rows(self, index: np.ndarray) -> tuple[pd.DataFrame, Any]:
        X = self.frame[self.features].iloc[index]
        y = None if self.label is None else self.frame[self.label].iloc[index]
        return X, y


def load(ws: Workspace, spec: DataSpec, pinned: Mapping[str, int] | None = None, *, engine: Engine | None = None) -> Loaded:
    """Read the training rows with `engine` (default: the workspace's DuckDB engine);
    `pinned` maps tables to the Delta versions to read (see `Engine.training_rows`).

    Raises:
        TableNotFoundError, LakeError: a table or version that is not there (vacuumed?).
        SqlError: the query fails. SparkUnavailableError: on Spark, when it cannot start.
    """
    if spec.training_set is not None:
        from brickyard.ml import training_set

        return training_set.load(ws, spec.training_set, pinned, engine=engine)
    rows = (engine or ws.engine).training_rows(table=spec.table, query=spec.query, version=spec.version, pinned=pinned)
    return Loaded(_to_pandas(rows.table), dict(rows.reads), rows.source)


def _to_pandas(table: Any) -> pd.DataFrame:
    """Arrow to pandas with decimals as floats (scikit-learn cannot use Decimal objects)."""
    import pyarrow as pa

    columns = []
    for field_ in table.schema:
        column = table.column(field_.name)
        if pa.types.is_decimal(field_.type):
            column = column.cast(pa.float64())
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_pandas()


def prepare(
    loaded: Loaded,
    *,
    label: str | None,
    features: list[str] | None,
    exclude: list[str],
    split: SplitSpec | None,
    problem: Problem | None = None,
) -> Prepared:
    """Check the columns and make the split (no split when `split` is None: clustering).

    Raises:
        TrainingDataError: a missing or all-null column, a label with one class, too few rows.
    """
    import pandas as pd

    frame = loaded.frame
    columns = list(frame.columns)
    where = loaded.source
    for name in [*(features or []), *exclude, *([label] if label else [])]:
        if name not in frame.columns:
            role = "label" if name == label else "feature" if name in (features or []) else "excluded"
            raise TrainingDataError(
                f"{role} column {name!r} does not exist in {where}",
                hint=suggest(name, columns) or f"its columns are: {', '.join(columns)}",
            )
    if label is not None and label in (features or []):
        raise TrainingDataError(
            f"label column {label!r} is also listed in features:", hint=f"remove {label!r} from features:"
        )
    if features is None:
        offered = loaded.features if loaded.features is not None else columns
        features = [c for c in offered if c != label and c not in exclude and not _is_temporal(frame[c])]
    else:
        features = [c for c in features if c not in exclude]
    if not features:
        raise TrainingDataError(f"no feature columns are left in {where}", hint="list them in features:")
    for name in features:
        if _is_temporal(frame[name]):
            raise TrainingDataError(
                f"feature column {name!r} holds dates or times, which the model cannot use as they are",
                hint="derive numbers from it in a sql task (hour, day of week, age in days) or exclude it",
            )
    for name in features:
        if frame[name].isna().all():
            raise TrainingDataError(
                f"feature column {name!r} is null in every row of {where}",
                hint=f"add {name!r} to exclude: (or drop it from features:), or fix the upstream task",
            )
    if label is not None:
        missing = frame[label].isna()
        if missing.all():
            raise TrainingDataError(f"label column {label!r} is null in every row of {where}")
        if missing.any():
            frame = frame.loc[~missing]
    frame = frame.reset_index(drop=True)
    if len(frame) < MIN_ROWS:
        raise TrainingDataError(
            f"{where} has {len(frame)} usable rows; training needs at least {MIN_ROWS}"
            + (" to split off a test set" if split is not None else ""),
            hint="check the filters of the upstream tasks, or point the task at a bigger table",
        )
    numeric = [c for c in features if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])]
    categorical = [c for c in features if c not in numeric]
    if label is None:
        resolved: Problem = "clustering"
    else:
        resolved = problem or infer_problem(frame[label])
    if resolved == "classification":
        assert label is not None
        classes = frame[label].nunique()
        if classes < 2:
            only = frame[label].iloc[0]
            only = only.item() if hasattr(only, "item") else only
            raise TrainingDataError(
                f"label {label!r} has one class ({only!r}) in all {len(frame)} rows of {where}; "
                "a classifier needs at least two",
                hint="check the upstream filters, or pick another label",
            )
    if split is None:
        everything = np.arange(len(frame))
        return Prepared(frame, features, numeric, categorical, label, resolved, loaded.reads, everything, everything)
    train_index, test_index = split_indices(frame, label, split, resolved == "classification", where)
    return Prepared(frame, features, numeric, categorical, label, resolved, loaded.reads, train_index, test_index)


def column_problems(spec: TrainSpec, columns: Sequence[str], where: str) -> list[tuple[tuple[str | int, ...], str]]:
    """(key, message) for each column `spec` names that `columns` lacks (the label, each
    feature, excluded and key column), worded as `prepare` words it, found before any row
    is read (for `brickyard validate`)."""
    named: list[tuple[tuple[str | int, ...], str, str]] = []
    if spec.label:
        named.append((("label",), "label", spec.label))
    named += [(("features", i), "feature", name) for i, name in enumerate(spec.features or [])]
    named += [(("exclude", i), "excluded", name) for i, name in enumerate(spec.exclude)]
    named += [(("key", i), "key", name) for i, name in enumerate(spec.key)]
    return [
        (at, f"{role} column {name!r} does not exist in {where} "
             f"(hint: {suggest(name, columns) or 'its columns are: ' + ', '.join(columns)})")
        for at, role, name in named
        if name not in columns
    ]


def infer_problem(label: pd.Series) -> Problem:
    """Classification for text, booleans, categories and integers with few values;
    regression otherwise."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(label) or not pd.api.types.is_numeric_dtype(label):
        return "classification"
    if pd.api.types.is_integer_dtype(label) and label.nunique() <= MAX_CLASSES_FOR_INT_LABEL:
        return "classification"
    return "regression"


def split_indices(
    frame: pd.DataFrame, label: str | None, split: SplitSpec, classification: bool, where: str = "the data"
) -> tuple[np.ndarray, np.ndarray]:
    """The seeded train/test row positions (stratified by the label when asked).

    Raises:
        TrainingDataError: the split cannot be made (a class too small to stratify).
    """
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(frame))
    stratify = frame[label].to_numpy() if (split.stratify and classification and label) else None
    try:
        train, test = train_test_split(rows, test_size=split.test_size, random_state=split.seed, stratify=stratify)
    except ValueError as exc:
        raise TrainingDataError(
            f"cannot split {len(frame)} rows of {where} with test_size {split.test_size}: {exc}",
            hint="set split: {stratify: false}, change test_size, or train on more rows",
        ) from exc
    if len(train) < 2 or len(test) < 1:
        raise TrainingDataError(f"{where} is too small to split: {len(train)} train / {len(test)} test rows")
    return np.sort(train), np.sort(test)


def _is_temporal(column: pd.Series) -> bool:
    import pandas as pd

    return bool(
        pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_timedelta64_dtype(column)
    )


def source_text(spec: DataSpec) -> str:
    """A short description of where the rows come from (for messages and params)."""
    if spec.table is not None:
        return spec.table if spec.version is None else f"{spec.table}@v{spec.version}"
    if spec.training_set is not None:
        entities = spec.training_set.table or "sql"
        return f"training set ({entities} + {', '.join(item.table for item in spec.training_set.features)})"
    return "query"

