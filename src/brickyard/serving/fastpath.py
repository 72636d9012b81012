"""A compiled, numpy-only form of the scikit-learn pipelines brickyard trains.

The preprocessing, a ``ColumnTransformer`` of (``SimpleImputer`` + ``StandardScaler``) blocks
for numbers and (``SimpleImputer`` + ``OneHotEncoder``) blocks for categories (or, for numeric
columns only, brickyard's ``select`` → ``impute`` → ``scale`` steps), is copied into a few
arrays and dicts (`Features`), and a request is turned into the model's feature matrix with
a handful of numpy operations instead of the pipeline's per-call overhead (pandas frames,
validation, column selection), which costs milliseconds for one row. Then the last step:

- ``LogisticRegression``: its coefficients, scored in numpy (`LogisticPredictor`);
- a linear regressor (``LinearRegression``, ``Ridge``, ``Lasso``, ``ElasticNet``, ...): its
  coefficients (`LinearRegressorPredictor`);
- tree ensembles and trees (random forest, extra trees, gradient boosting,
  HistGradientBoosting, LightGBM) and KMeans: the fitted estimator itself, called on the
  compiled feature matrix (`EstimatorPredictor`): its own ``predict`` on numpy, without
  the pipeline around it, rather than a re-implementation of trees (a forest's trees are
  called one by one for small batches: `ForestPredictor`).

Why not skl2onnx: its converter rejects ``SimpleImputer(strategy="most_frequent")`` on string
columns with ``missing_values=np.nan`` ("implemented when the missing values are string"),
which is exactly the categorical block brickyard trains.

`compile_pipeline` returns None (and why) for anything else, for a model whose signature
declares params (only the MLflow model applies them), and for a pipeline whose compiled form
does not reproduce the pipeline's ``predict`` (and ``predict_proba``) on a check sample at load;
the caller then serves the MLflow pyfunc model. ``tests/unit/serving/test_serving_fastpath.py``
keeps each kind equal to the MLflow model on the Titanic split.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np

from brickyard.serving.errors import InvalidInputError
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


class Features:
    """The compiled preprocessing: raw columns in, the final estimator's feature matrix out."""

    def __init__(self, numeric: list[_Numeric], categorical: list[_Categorical], width: int) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.width = width
        # The same parameters as plain Python numbers, for one row (`scores_one`, `matrix_one`).
        self._numeric_steps = [
            (
                name,
                block.start + j,
                None if block.fill is None else float(block.fill[j]),
                None if block.mean is None else float(block.mean[j]),
                None if block.scale is None else float(block.scale[j]),
            )
            for block in numeric
            for j, name in enumerate(block.names)
        ]

    def transform(self, batch: Batch) -> np.ndarray:
        """The pipeline's feature matrix for the batch (what its preprocessing outputs)."""
        rows = batch.rows
        columns = batch.columns
        matrix = np.zeros((rows, self.width))
        for block in self.numeric:
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
        for cat in self.categorical:
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

    def _numbers_one(self, row: dict[str, Any]) -> Iterator[tuple[int, float]]:
        """(feature index, value) of one row's numeric features, in plain Python."""
        for name, index, fill, mean, scale in self._numeric_steps:
            value = row[name]
            if value != value and fill is not None:  # NaN: a null number
                value = fill
            if mean is not None:
                value -= mean
            if scale is not None:
                value /= scale
            yield index, value

    def _categories_one(self, row: dict[str, Any]) -> Iterator[int]:
        """The feature index that is 1.0 for each of one row's known categories."""
        for cat in self.categorical:
            code = cat.codes.get(row[cat.name])
            if code is not None:
                yield cat.offset + code

    def scores_one(self, row: dict[str, Any], weights: list[list[float]], base: list[float]) -> list[float]:
        """One row's linear scores (``features @ weights + base``) in plain Python: for one
        row, numpy's per-call overhead costs more than the arithmetic. The same steps as
        `transform`, so the result is the batch path's (a test keeps them equal)."""
        scores = list(base)
        # The steps of `_numbers_one` and `_categories_one`, inlined: generators cost a few
        # percent of a one-row request here.
        for name, index, fill, mean, scale in self._numeric_steps:
            value = row[name]
            if value != value and fill is not None:  # NaN: a null number
                value = fill
            if mean is not None:
                value -= mean
            if scale is not None:
                value /= scale
            for k, weight in enumerate(weights[index]):
                scores[k] += value * weight
        for cat in self.categorical:
            code = cat.codes.get(row[cat.name])
            if code is not None:
                for k, weight in enumerate(weights[cat.offset + code]):
                    scores[k] += weight
        return scores

    def matrix_one(self, row: dict[str, Any]) -> np.ndarray:
        """One row's feature matrix (1 x width), built from plain values."""
        vector = [0.0] * self.width
        for index, value in self._numbers_one(row):
            vector[index] = value
        for index in self._categories_one(row):
            vector[index] = 1.0
        return np.array([vector])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class LogisticPredictor:
    """Scores a batch with the fitted parameters of preprocessing + logistic regression."""

    kind = "fastpath"
    inline_rows = 2_000  # a few numpy operations: scored on the event loop up to this many rows

    def __init__(self, features: Features, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray) -> None:
        self.features = features
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept
        self.classes = classes
        self._binary = coef.shape[0] == 1
        self._labels_json = classes if classes.dtype.kind in "biuf" else None
        self._weights = self._coef_t.tolist()
        self._intercept_list = [float(x) for x in np.ravel(intercept)]

    def predict_one(self, row: dict[str, Any]) -> Any:
        """The label for one row of plain values (from `InputSchema.one_row`)."""
        scores = self.features.scores_one(row, self._weights, self._intercept_list)
        if self._binary:
            return _plain(self.classes[1 if scores[0] > 0 else 0])
        return _plain(self.classes[max(range(len(scores)), key=scores.__getitem__)])

    def decision(self, batch: Batch) -> np.ndarray:
        return self.features.transform(batch) @ self._coef_t + self._intercept

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


LinearPipelinePredictor = LogisticPredictor  # the name it had when it was the only kind


class LinearRegressorPredictor:
    """Scores a batch with the fitted parameters of preprocessing + a linear regressor."""

    kind = "fastpath"
    inline_rows = 2_000
    classes = None

    def __init__(self, features: Features, coef: np.ndarray, intercept: float) -> None:
        self.features = features
        self._coef = np.ascontiguousarray(coef, dtype=np.float64)
        self._intercept = intercept
        self._weights = [[float(weight)] for weight in self._coef]

    def predict_one(self, row: dict[str, Any]) -> float:
        return self.features.scores_one(row, self._weights, [self._intercept])[0]

    def predict(self, batch: Batch) -> np.ndarray:
        return self.features.transform(batch) @ self._coef + self._intercept

    def predict_proba(self, batch: Batch) -> Any:
        raise InvalidInputError("this model does not give class probabilities", hint="drop predict_proba")


class EstimatorPredictor:
    """Compiled preprocessing, then the fitted estimator's own ``predict`` on the matrix."""

    kind = "fastpath"
    inline_rows = 64  # trees cost more per row than a dot product: larger batches go to a thread

    def __init__(self, features: Features, estimator: Any) -> None:
        self.features = features
        self.estimator = estimator
        proba = hasattr(estimator, "predict_proba") and hasattr(estimator, "classes_")
        self.classes = np.asarray(estimator.classes_) if proba else None

    def predict_one(self, row: dict[str, Any]) -> Any:
        return _plain(self.estimator.predict(self.features.matrix_one(row))[0])

    def predict(self, batch: Batch) -> Any:
        labels = self.estimator.predict(self.features.transform(batch))
        return labels if labels.dtype.kind in "biuf" else labels.tolist()

    def predict_proba(self, batch: Batch) -> np.ndarray:
        if self.classes is None:
            raise InvalidInputError("this model does not give class probabilities", hint="drop predict_proba")
        return np.asarray(self.estimator.predict_proba(self.features.transform(batch)))


class ForestPredictor(EstimatorPredictor):
    """A random forest or extra trees: for up to `inline_rows` rows, its trees' own
    ``predict_proba`` / ``predict`` summed in tree order and divided by their number, as the
    forest does, without the forest's joblib dispatch (milliseconds per call, most of a
    one-row request); larger batches go to the forest's ``predict``."""

    def predict_one(self, row: dict[str, Any]) -> Any:
        return _plain(self._small(self.features.matrix_one(row), proba=False)[0])

    def predict(self, batch: Batch) -> Any:
        if batch.rows > self.inline_rows:
            return super().predict(batch)
        labels = self._small(self.features.transform(batch), proba=False)
        return labels if labels.dtype.kind in "biuf" else labels.tolist()

    def predict_proba(self, batch: Batch) -> np.ndarray:
        if self.classes is None or batch.rows > self.inline_rows:
            return super().predict_proba(batch)
        return self._small(self.features.transform(batch), proba=True)

    def _small(self, matrix: np.ndarray, *, proba: bool) -> np.ndarray:
        forest = self.estimator
        X = np.ascontiguousarray(matrix, dtype=np.float32)  # the trees' own input type
        trees = forest.estimators_
        if self.classes is None:
            total = np.zeros(len(X))
            for tree in trees:
                total += tree.predict(X, check_input=False)
            total /= len(trees)
            return total
        total = np.zeros((len(X), len(self.classes)))
        for tree in trees:
            total += tree.predict_proba(X, check_input=False)
        total /= len(trees)
        return total if proba else forest.classes_.take(np.argmax(total, axis=1), axis=0)


FastPredictor = LogisticPredictor | LinearRegressorPredictor | EstimatorPredictor
FORESTS = {"RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor"}

# Last steps called as they are on the compiled matrix: (module prefix, class names).
ESTIMATORS = {
    "sklearn.ensemble": {
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier", "ExtraTreesRegressor",
        "GradientBoostingClassifier", "GradientBoostingRegressor",
        "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
    },
    "sklearn.tree": {"DecisionTreeClassifier", "DecisionTreeRegressor", "ExtraTreeClassifier", "ExtraTreeRegressor"},
    "sklearn.cluster": {"KMeans", "MiniBatchKMeans"},
    "lightgbm": {"LGBMClassifier", "LGBMRegressor"},
}


def _expit(values: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(values)


def compile_pipeline(model: Any, schema: InputSchema) -> tuple[FastPredictor | None, str]:
    """Compile a fitted sklearn Pipeline to a fast predictor (see the module docstring).

    Returns ``(predictor, "")``, or ``(None, reason)`` when the pipeline is of another kind,
    the signature declares params, or its compiled form disagrees with it on a check sample.
    """
    if schema.params:
        return None, "the signature declares params, which only the MLflow model applies"
    try:
        predictor, reason = _compile(model, schema)
    except Exception as exc:  # an unexpected attribute layout: serve the pyfunc model instead
        return None, f"cannot compile {type(model).__name__}: {exc}"
    if predictor is None:
        return None, reason
    problem = _self_check(predictor, model, schema)
    return (None, problem) if problem else (predictor, "")


def _compile(model: Any, schema: InputSchema) -> tuple[FastPredictor | None, str]:
    from sklearn.pipeline import Pipeline

    if not isinstance(model, Pipeline) or len(model.steps) < 2:
        return None, "not a scikit-learn Pipeline of preprocessing and a model"
    steps = [step for _, step in model.steps]
    last = steps[-1]
    kind, reason = _last_step_kind(last)
    if kind is None:
        return None, reason
    features, reason = _compile_features(steps[0], steps[1:-1], schema)
    if features is None:
        return None, reason
    expected = getattr(last, "n_features_in_", None)
    if expected is not None and expected != features.width:
        return None, f"the compiled features ({features.width}) do not match the model's ({expected})"
    if kind == "logistic":
        return LogisticPredictor(
            features, np.asarray(last.coef_, dtype=np.float64), np.asarray(last.intercept_, dtype=np.float64),
            np.asarray(last.classes_),
        ), ""
    if kind == "linear":
        return LinearRegressorPredictor(features, np.ravel(last.coef_), float(np.ravel(last.intercept_)[0])), ""
    if type(last).__module__.startswith("sklearn.ensemble") and type(last).__name__ in FORESTS and last.n_outputs_ == 1:
        return ForestPredictor(features, last), ""
    return EstimatorPredictor(features, last), ""


def _last_step_kind(estimator: Any) -> tuple[str | None, str]:
    """logistic, linear or estimator (see the module docstring); None and why for others."""
    from sklearn.base import is_regressor
    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model._base import LinearModel

    name = type(estimator).__name__
    if type(estimator) is LogisticRegression:
        if estimator.coef_.shape[0] > 1 and (getattr(estimator, "multi_class", "auto") == "ovr" or estimator.solver == "liblinear"):
            return None, "one-vs-rest multiclass logistic regression"
        return "logistic", ""
    if isinstance(estimator, LinearModel) and is_regressor(estimator):
        coef = np.asarray(estimator.coef_)
        if coef.ndim > 1 and coef.shape[0] != 1:
            return None, f"{name} predicts several targets"
        if np.size(getattr(estimator, "intercept_", 0.0)) != 1:
            return None, f"{name} has several intercepts"
        return "linear", ""
    module = type(estimator).__module__
    if any(module.startswith(prefix) and name in names for prefix, names in ESTIMATORS.items()):
        if hasattr(estimator, "feature_names_in_"):
            return None, f"{name} was fitted on named columns, not the preprocessing's matrix"
        return "estimator", ""
    return None, f"last step is {name}, which has no fast path"


def _compile_features(prep: Any, rest: list[Any], schema: InputSchema) -> tuple[Features | None, str]:
    """The preprocessing: a ColumnTransformer, then (numeric columns only) imputer and scaler steps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if not isinstance(prep, ColumnTransformer):
        return None, f"first step is {type(prep).__name__}, not ColumnTransformer"
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
    if rest:
        # brickyard's numeric-only pipeline: select (passthrough) → impute → scale → model
        if categorical or len(numeric) != 1 or any(x is not None for x in (numeric[0].fill, numeric[0].mean, numeric[0].scale)):
            return None, "steps after the ColumnTransformer on columns it already transforms"
        block, reason = _numeric_block(0, numeric[0].names, rest, kinds)
        if block is None:
            return None, reason
        numeric = [block]
    return Features(numeric, categorical, width), ""


def _numeric_block(start: int, names: tuple[str, ...], steps: list[Any], kinds: dict[str, str]) -> tuple[_Numeric | None, str]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler

    if any(kinds[name] not in (FLOAT, INT, BOOL) for name in names):
        return None, "not all numeric columns"
    fill = mean = scale = None
    remaining = [step for step in steps if not _identity(step)]
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


def _identity(step: Any) -> bool:
    """"passthrough", or what a fitted ColumnTransformer turns it into (an identity FunctionTransformer)."""
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(step, str):
        return step == "passthrough"
    return type(step) is FunctionTransformer and step.func is None and step.inverse_func is None


def _imputes_nan(imputer: Any) -> bool:
    missing = imputer.missing_values
    return bool(isinstance(missing, float) and np.isnan(missing) and not imputer.add_indicator)


def _self_check(predictor: FastPredictor, model: Any, schema: InputSchema) -> str:
    """Compare the compiled form with the pipeline on rows that exercise every branch: the
    feature matrix, ``predict`` (batch and one-row lane) and, for a classifier, ``predict_proba``."""
    batch = check_batch(predictor.features, schema)
    frame = batch.frame()
    try:
        matrix = model[:-1].transform(frame)
        expected = np.asarray(model.predict(frame))
        got = np.asarray(predictor.predict(batch))
        one_by_one = [predictor.predict_one(row) for row in _plain_rows(batch, schema)]
        probabilities = (model.predict_proba(frame), predictor.predict_proba(batch)) if predictor.classes is not None else None
    except Exception as exc:
        return f"self-check could not run: {exc}"
    matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix, dtype=np.float64)
    compiled = predictor.features.transform(batch)
    if matrix.shape != compiled.shape or not np.allclose(matrix, compiled, rtol=0, atol=CHECK_TOLERANCE):
        return "compiled preprocessing disagrees with the pipeline's on the check sample"
    if probabilities is not None:
        want, have = probabilities
        if want.shape != have.shape or not np.allclose(want, have, rtol=0, atol=CHECK_TOLERANCE):
            return "compiled form disagrees with the pipeline's predict_proba on the check sample"
    if not _same(expected, got) or not _same(expected, np.asarray(one_by_one)):
        return "compiled form disagrees with the pipeline's predict on the check sample"
    return ""


def _same(expected: np.ndarray, got: np.ndarray) -> bool:
    """Equal labels; numbers equal to rounding (CHECK_TOLERANCE, relative for large values)."""
    if expected.shape != got.shape:
        return False
    if expected.dtype.kind == "f" or got.dtype.kind == "f":
        return bool(np.allclose(expected, got, rtol=CHECK_TOLERANCE, atol=CHECK_TOLERANCE))
    return bool(np.array_equal(expected, got))


def _plain_rows(batch: Batch, schema: InputSchema) -> list[dict[str, Any]]:
    """The batch's rows as `InputSchema.one_row` gives them: floats (NaN for null), strings."""
    rows = []
    for i in range(batch.rows):
        row: dict[str, Any] = {}
        for spec in schema.columns:
            value = batch.columns[spec.name][i]
            row[spec.name] = float(value) if spec.kind in (FLOAT, INT, BOOL) else value
        rows.append(row)
    return rows


def check_batch(features: Features, schema: InputSchema) -> Batch:
    """Rows with typical, extreme, null (where allowed) and unknown values for every column,
    typed as `InputSchema.batch` types a request."""
    rows = 6
    numeric_fill = {name: float(block.fill[j]) if block.fill is not None else 1.0
                    for block in features.numeric for j, name in enumerate(block.names)}
    categories = {cat.name: [value for value in cat.codes if value is not None] for cat in features.categorical}
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
                columns[spec.name] = np.round(floats).astype(np.int32 if spec.type == "integer" else np.int64)
            elif spec.kind == BOOL and spec.required:
                columns[spec.name] = np.array([i % 2 == 0 for i in range(rows)])
            elif spec.kind == FLOAT and spec.type == "float":
                columns[spec.name] = np.array(floats, dtype=np.float32)
            else:
                columns[spec.name] = np.array(floats if spec.kind == FLOAT else np.round(floats), dtype=np.float64)
        else:
            columns[spec.name] = tuple([None] * rows)
    return Batch(columns, rows)
