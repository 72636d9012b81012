"""The model concept once: serving resolves and loads models with `brickyard.ml.registry`
(one reference type, one resolver, one loader, one not-found error), as scoring does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from serving_helpers import register_version

import brickyard
from brickyard import Workspace
from brickyard.ml import registry, scoring
from brickyard.ml.errors import ModelNotFoundError, NoChampionError
from brickyard.serving import ModelRef, ServingService
from brickyard.serving.registry import Registry
from titanic_example import FEATURES, RegisteredExample, titanic_frame


def check(ws: Workspace, ref: str) -> None:
    ServingService(ws, [ModelRef.parse(ref)], auth=False).check_models()


def test_one_model_reference_type() -> None:
    assert ModelRef is registry.ModelRef is scoring.ModelRef
    assert str(ModelRef.parse("titanic")) == "titanic" and ModelRef.parse("titanic/3").selector == "3"


def test_serving_reports_missing_models_as_scoring_does(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        check(serving_ws, "titanc")
    assert caught.value.message == "no registered model 'titanc'" and "did you mean titanic" in str(caught.value.hint)
    with pytest.raises(ModelNotFoundError, match="model 'titanic' has no version or alias 'champoin'"):
        check(serving_ws, "titanic@champoin")
    with pytest.raises(ModelNotFoundError, match="model 'titanic' has no version 99 .*its versions: 1"):
        check(serving_ws, "titanic/99")
    with pytest.raises(ModelNotFoundError, match="no registered model 'titanc'"):
        scoring.load_model(serving_ws, "titanc@champion")


def test_a_model_without_a_champion_says_how_to_get_one(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    register_version(serving_ws, "titanic_unpromoted", titanic.model_uri)
    with pytest.raises(NoChampionError) as caught:
        check(serving_ws, "titanic_unpromoted")
    assert caught.value.message == "model 'titanic_unpromoted' has no champion version yet"
    assert caught.value.hint == "promote one through the gate: brickyard models promote titanic_unpromoted VERSION"


def test_serving_and_scoring_load_the_same_model(serving_ws: Workspace, titanic: RegisteredExample) -> None:
    served = Registry(serving_ws.mlflow_tracking_uri).load("titanic", "1")
    scored = scoring.load_model(serving_ws, "titanic/1")
    frame = titanic_frame()[FEATURES].head(50)
    assert served.fast_path_problem == ""  # compiled from the same scikit-learn estimator
    np.testing.assert_allclose(scored.model.predict_proba(frame), titanic.model.predict_proba(frame))


def test_the_example_trainer_is_not_shipped_in_the_package() -> None:
    assert importlib.util.find_spec("brickyard.serving.example") is None
    package = Path(brickyard.__file__).parent
    importers = [path for path in package.rglob("*.py") if "titanic_example" in path.read_text()]
    assert importers == []
