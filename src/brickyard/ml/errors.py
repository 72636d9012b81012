"""The errors of the ML lifecycle (train, evaluate, promote, gate, reproduce).

    BrickyardError
    └── ModelError                 anything about models, their data and their gate
        ├── TrainingDataError      the training data cannot train this model (one class,
        │                          a missing or all-null column, too few rows to split)
        ├── EstimatorError         an unknown estimator name or an import path that fails
        ├── ModelNotFoundError     no registered model (or version) by that name
        │   └── NoChampionError    the model has no `champion` alias yet
        ├── GateRuleError          a promotion rule that does not parse, or names a metric
        │                          the model version's run does not have
        └── TuningError            a tune study that cannot go on (no trial completed in
                                   the budget, a resumed study with other settings)

`ModelError` and `TrainingDataError` are defined in `brickyard.errors` (an engine that fits
a model raises them) and exported here. This module imports nothing heavy, so the CLI and the task kinds may import it freely.
"""

from __future__ import annotations

from brickyard.errors import ModelError, TrainingDataError

__all__ = [
    "EstimatorError", "GateRuleError", "ModelError", "ModelNotFoundError", "NoChampionError", "TrainingDataError",
]


class EstimatorError(ModelError):
    """The `estimator:` of a train task cannot be built."""


class ModelNotFoundError(ModelError):
    """No registered model, or no such version or alias of one."""


class NoChampionError(ModelNotFoundError):
    """The registered model has no version aliased `champion`."""


class GateRuleError(ModelError):
    """A gate rule is malformed or names a metric that was never logged."""


class TuningError(ModelError):
    """A `tune` task's study cannot give a model: no trial completed within the budget,
    or a study to resume was made with other settings."""
