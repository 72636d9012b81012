"""A compiled, numpy-only form of the scikit-learn pipelines brickyard trains.

``ColumnTransformer`` of (``SimpleImputer`` + ``StandardScaler``) blocks for numbers and
(``SimpleImputer`` + ``OneHotEncoder``) blocks for categories, then ``LogisticRegression``:
its fitted parameters are copied into a few arrays and dicts, and a request is scored with a
handful of numpy operations instead of the pipeline's per-call overhead (pandas frames,
validation, column selection), which costs milliseconds for one row.

Why not skl2onnx: its converter rejects ``SimpleImputer(strategy="most_frequent")`` on string
columns with ``missing_values=np.nan`` ("implemented when the missing values are string"),
which is exactly the categorical block brickyard trains.

`compile_pipeline` returns None (and why) for anything else, and for a pipeline whose compiled
form does not reproduce ``predict_proba`` on a check sample; the caller then serves the MLflow
pyfunc model. ``tests/unit/serving/test_fastpath.py`` keeps the two equal on the Titanic split.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from brickyard.serving.schema import BOOL, FLOAT, INT, STR, Batch, InputSchema

CHECK_TOLERANCE = 1e-9


@dataclass(frozen=True)
class _Numeric:
    start: int
    names: tuple[str, ...]
    fill: np.ndarray | None  # imputer statistics per column; None: no imputer
    mean: np.ndarray | None
    scale: np.ndarray | None


@dataclass(frozen=True)
class _Categorical:
    offset: int
    name: str
    fill: Any  # the imputed value for a null (None: no imputer, a null is unknown)
    codes: dict[Any, int]  # category -> position; None -> the imputed category's position
    size: int  # number of categories (output columns)


class LinearPipelinePredictor:
    """Scores a batch with the fitted parameters of preprocessing + logistic regression."""

    kind = "fastpath"

    def __init__(
        self,
        numeric: list[_Numeric],
        categorical: list[_Categorical],
        width: int,
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: np.ndarray,
    ) -> None:
        self._numeric = numeric
        self._categorical = categorical
        self._width = width
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept
        self.classes = classes
        self._binary = coef.shape[0] == 1
        self._labels_json = classes if classes.dtype.kind in "biuf" else None
        # The same parameters as plain Python numbers, for `predict_one`.
        self._weights = self._coef_t.tolist()
        self._intercept_list = [float(x) for x in np.ravel(intercept)]
        self._numeric_steps = [
            [
                (
                    name,
                    block.start + j,
                    None if block.fill is None else float(block.fill[j]),
                    None if block.mean is None else float(block.mean[j]),
                    None if block.scale is None else float(block.scale[j]),
                )
                for j, name in enumerate(block.names)
            ]
            for block in numeric
        ]

    def predict_one(self, row: dict[str, Any]) -> Any:
        """The label for one row of plain values (from `InputSchema.one_row`), in plain
        Python: for one row, numpy's per-call overhead costs more than the arithmetic.
        The same steps as `transform` and `decision`, so the label is `predict`'s (a
        test keeps them equal)."""
        scores = list(self._intercept_list)
        weights = self._weights
        for block in self._numeric_steps:
            for name, index, fill, mean, scale in block:
                value = row[name]
                if value != value and fill is not None:  # NaN: a null number
                    value = fill
                if mean is not None:
                    value -= mean
                if scale is not None:
                    value /= scale
                for k, weight in enumerate(weights[index]):
                    scores[k] += value * weight
        for cat in self._categorical:
            code = cat.codes.get(row[cat.name])
            if code is not None:
                for k, weight in enumerate(weights[cat.offset + code]):
                    scores[k] += weight
        if self._binary:
            label = self.classes[1 if scores[0] > 0 else 0]
        else:
            label = self.classes[max(range(len(scores)), key=scores.__getitem__)]
        return label.item() if isinstance(label, np.generic) else label

    def transform(self, batch: Batch) -> np.ndarray:
        """The pipeline's feature matrix for the batch (what `ColumnTransformer` outputs)."""
        rows = batch.rows
        columns = batch.columns
        matrix = np.zeros((rows, self._width))
        for block in self._numeric:
            end = block.start + len(block.names)
            part = matrix[:, block.start : end]
            for j, name in enumerate(block.names):
                part[:, j] = columns[name]
            if block.fill is not None:
                missing = np.isnan(part)
                if missing.any():
                    np.copyto(part, np.broadcast_to(block.fill, part.shape), where=missing)
            if block.mean is not None:
                part -= block.mean
            if block.scale is not None:
                part /= block.scale
        for cat in self._categorical:
            codes = cat.codes  # None (a null) maps to the imputed category's code
            values = columns[cat.name]
            if rows == 1:
                code = codes.get(values[0])
                if code is not None:
                    matrix[0, cat.offset + code] = 1.0
                continue
            index = np.fromiter(map(codes.get, values, repeat(-1, rows)), dtype=np.intp, count=rows)
            known = index >= 0
            matrix[np.flatnonzero(known), cat.offset + index[known]] = 1.0
        return matrix

    def decision(self, batch: Batch) -> np.ndarray:
        return self.transform(batch) @ self._coef_t + self._intercept

    def predict_proba(self, batch: Batch) -> np.ndarray:
        scores = self.decision(batch)
        if self._binary:
            positive = _expit(scores[:, 0])
            return np.column_stack([1.0 - positive, positive])
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=1, keepdims=True)
        return scores

    def predict(self, batch: Batch) -> Any:
        scores = self.decision(batch)
        index = (scores[:, 0] > 0).astype(np.intp) if self._binary else scores.argmax(axis=1)
        labels = self.classes[index]
        return labels if self._labels_json is not None else labels.tolist()


def _expit(values: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(values)


def compile_pipeline(model: Any, schema: InputSchema) -> tuple[LinearPipelinePredictor | None, str]:
    """Compile a fitted sklearn Pipeline to a `LinearPipelinePredictor`.

    Returns ``(predictor, "")``, or ``(None, reason)`` when the pipeline is of another kind or
    its compiled form disagrees with it on a check sample.
    """
    try:
        predictor, reason = _compile(model, schema)
    except Exception as exc:  # an unexpected attribute layout: serve the pyfunc model instead
        return None, f"cannot compile {type(model).__name__}: {exc}"
    if predictor is None:
        return None, reason
    problem = _self_check(predictor, model, schema)
    return (None, problem) if problem else (predictor, "")


def _compile(model: Any, schema: InputSchema) -> tuple[LinearPipelinePredictor | None, str]:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) != 2:
        return None, "not a two-step sklearn Pipeline"
    prep, clf = model.steps[0][1], model.steps[1][1]
    if not isinstance(prep, ColumnTransformer):
        return None, f"first step is {type(prep).__name__}, not ColumnTransformer"
    if type(clf) is not LogisticRegression:
        return None, f"last step is {type(clf).__name__}, not LogisticRegression"
    if clf.coef_.shape[0] > 1 and (getattr(clf, "multi_class", "auto") == "ovr" or clf.solver == "liblinear"):
        return None, "one-vs-rest multiclass logistic regression"
    kinds = {spec.name: spec.kind for spec in schema.columns}
    feature_names = list(getattr(prep, "feature_names_in_", []))
    input_indices = getattr(prep, "_transformer_to_input_indices", {})
    numeric: list[_Numeric] = []
    categorical: list[_Categorical] = []
    width = 0
    for name, transformer, _columns in prep.transformers_:
        if transformer == "drop":
            continue
        indices = input_indices.get(name)
        if indices is None or not feature_names:
            return None, f"cannot tell which columns {name!r} takes"
        names = tuple(str(feature_names[i]) for i in indices)
        if not names:
            continue
        missing = [column for column in names if column not in kinds]
        if missing:
            return None, f"columns {missing} are not in the model signature"
        steps = [transformer] if transformer == "passthrough" else (
            [step for _, step in transformer.steps] if isinstance(transformer, Pipeline) else [transformer]
        )
        block, reason = _numeric_block(width, names, steps, kinds)
        if block is not None:
            numeric.append(block)
            width += len(names)
            continue
        cats, cat_reason = _categorical_blocks(width, names, steps, kinds)
        if cats is None:
            return None, f"transformer {name!r}: {reason}; {cat_reason}"
        categorical.extend(cats)
        width += sum(cat.size for cat in cats)
    if width != clf.coef_.shape[1]:
        return None, f"the compiled features ({width}) do not match the model's ({clf.coef_.shape[1]})"
    return (
        LinearPipelinePredictor(
            numeric, categorical, width, np.asarray(clf.coef_, dtype=np.float64),
            np.asarray(clf.intercept_, dtype=np.float64), np.asarray(clf.classes_),
        ),
        "",
    )


def _numeric_block(start: int, names: tuple[str, ...], steps: list[Any], kinds: dict[str, str]) -> tuple[_Numeric | None, str]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if any(kinds[name] not in (FLOAT, INT, BOOL) for name in names):
        return None, "not all numeric columns"
    fill = mean = scale = None
    remaining = [step for step in steps if step != "passthrough"]
    if remaining and type(remaining[0]) is SimpleImputer:
        imputer = remaining.pop(0)
        if not _imputes_nan(imputer):
            return None, "numeric imputer with an indicator or non-NaN missing values"
        fill = np.asarray(imputer.statistics_, dtype=np.float64)
        if np.isnan(fill).any() or len(fill) != len(names):
            return None, "numeric imputer dropped an all-empty column"
    if remaining and type(remaining[0]) is StandardScaler:
        scaler = remaining.pop(0)
        mean = None if scaler.mean_ is None or not scaler.with_mean else np.asarray(scaler.mean_, dtype=np.float64)
        scale = None if scaler.scale_ is None or not scaler.with_std else np.asarray(scaler.scale_, dtype=np.float64)
    if remaining:
        return None, f"numeric step {type(remaining[0]).__name__} has no fast path"
    return _Numeric(start, names, fill, mean, scale), ""


def _categorical_blocks(start: int, names: tuple[str, ...], steps: list[Any], kinds: dict[str, str]) -> tuple[list[_Categorical] | None, str]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    if any(kinds[name] != STR for name in names):
        return None, "not all string columns"
    fills: list[Any] = [None] * len(names)
    remaining = list(steps)
    if remaining and type(remaining[0]) is SimpleImputer:
        imputer = remaining.pop(0)
        if not _imputes_nan(imputer) or len(imputer.statistics_) != len(names):
            return None, "categorical imputer with an indicator, non-NaN missing values or a dropped column"
        fills = list(imputer.statistics_)
        if not all(isinstance(value, str) for value in fills):
            return None, "categorical imputer fills non-string values"
    if len(remaining) != 1 or type(remaining[0]) is not OneHotEncoder:
        return None, "categorical steps other than SimpleImputer + OneHotEncoder"
    encoder = remaining[0]
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist") or getattr(encoder, "_infrequent_enabled", False):
        return None, "one-hot encoder that errors on unknown values or groups infrequent ones"
    if getattr(encoder, "drop_idx_", None) is not None:
        return None, "one-hot encoder with drop"
    blocks = []
    offset = start
    for name, fill, categories in zip(names, fills, encoder.categories_):
        values = list(categories)
        if not all(isinstance(value, str) for value in values):
            return None, f"column {name!r} has non-string categories"
        codes: dict[Any, int] = {value: i for i, value in enumerate(values)}
        if fill is not None and fill in codes:
            codes[None] = codes[fill]
        blocks.append(_Categorical(offset, name, fill, codes, len(values)))
        offset += len(values)
    return blocks, ""


def _imputes_nan(imputer: Any) -> bool:
    missing = imputer.missing_values
    return bool(isinstance(missing, float) and np.isnan(missing) and not imputer.add_indicator)


def _self_check(predictor: LinearPipelinePredictor, model: Any, schema: InputSchema) -> str:
    """Compare the compiled form with the pipeline on rows that exercise every branch."""
    batch = check_batch(predictor, schema)
    try:
        expected = model.predict_proba(batch.frame())
        got = predictor.predict_proba(batch)
    except Exception as exc:
        return f"self-check could not run: {exc}"
    if expected.shape != got.shape or not np.allclose(expected, got, rtol=0, atol=CHECK_TOLERANCE):
        return "compiled form disagrees with the pipeline's predict_proba on the check sample"
    if not np.array_equal(np.asarray(model.predict(batch.frame())), np.asarray(predictor.predict(batch))):
        return "compiled form disagrees with the pipeline's predict on the check sample"
    return ""


def check_batch(predictor: LinearPipelinePredictor, schema: InputSchema) -> Batch:
    """Rows with typical, extreme, null (where allowed) and unknown values for every column."""
    rows = 6
    numeric_fill = {name: float(block.fill[j]) if block.fill is not None else 1.0
                    for block in predictor._numeric for j, name in enumerate(block.names)}
    categories = {cat.name: [value for value in cat.codes if value is not None] for cat in predictor._categorical}
    columns: dict[str, Any] = {}
    for spec in schema.columns:
        if spec.kind == STR:
            known = categories.get(spec.name) or ["a"]
            values: list[Any] = [known[i % len(known)] for i in range(rows - 2)] + ["<unknown>", None if not spec.required else known[0]]
            columns[spec.name] = tuple(values)
        elif spec.kind in (FLOAT, INT, BOOL):
            base = numeric_fill.get(spec.name, 1.0)
            floats = [base, base + 1.0, 0.0, base * 3.0 + 7.0, -base - 2.0, np.nan if not spec.required else base]
            if spec.kind == INT and spec.required:
                columns[spec.name] = np.round(floats).astype(np.int64)
            elif spec.kind == BOOL and spec.required:
                columns[spec.name] = np.array([i % 2 == 0 for i in range(rows)])
            else:
                columns[spec.name] = np.array(floats if spec.kind == FLOAT else np.round(floats), dtype=np.float64)
        else:
            columns[spec.name] = tuple([None] * rows)
    return Batch(columns, rows)
