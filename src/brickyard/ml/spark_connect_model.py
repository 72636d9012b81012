"""Logging a Spark MLlib model to MLflow over Spark Connect.

`mlflow.spark.log_model` saves the model to a temporary folder on Spark's filesystem and
copies it out through the JVM's Hadoop FileSystem, which a Spark Connect client does not
have. This flavor module does the same with the DataFrame-era API that Connect offers:
the server writes the model (`model.write().save`) into a staging folder of the lake,
which the server sees at the same path as brickyard does (the lake's own requirement),
the folder is copied into MLflow's model folder as `sparkml/`, and the metadata is written
by mlflow.spark itself. The result is an ordinary `spark` flavor model: `mlflow.spark`
and `mlflow.pyfunc` load it as one logged by `mlflow.spark.log_model`.

Use it through `log_spark_model_over_connect`.

Loading such a model back has the same problem: `mlflow.pyfunc.load_model` reads the
`sparkml` folder through the JVM (`'NoneType' object has no attribute 'jvm'` over
Connect). `load_pyfunc_over_connect` builds the same pyfunc model (mlflow.spark's wrapper
around the PipelineModel) with the model read by the server (`PipelineModel.load` of the
downloaded folder, which the server must see at the same path: the score task downloads
it into the lake).
"""

from __future__ import annotations

import os
import shutil
import uuid
from typing import Any

SPARK_MODEL_FOLDER = "sparkml"  # mlflow.spark's name for the model's data folder


def log_spark_model_over_connect(
    model: Any, *, artifact_path: str, signature: Any, pip_requirements: list[str], staging_root: str
) -> Any:
    """Log `model` (a pyspark.ml model on a Connect session) as the `spark` flavor under
    the active MLflow run; `staging_root` is a lake folder the server can write.
    Returns MLflow's ModelInfo."""
    import sys

    from mlflow.models import Model

    return Model.log(
        artifact_path=None,
        name=artifact_path,
        flavor=sys.modules[__name__],
        spark_model=model,
        signature=signature,
        pip_requirements=pip_requirements,
        staging_root=staging_root,
    )


def save_model(
    spark_model: Any,
    path: str,
    mlflow_model: Any = None,
    signature: Any = None,
    pip_requirements: list[str] | None = None,
    staging_root: str | None = None,
    **_: Any,
) -> None:
    """The flavor's `save_model` (called by `mlflow.models.Model.log`)."""
    from mlflow.models import Model
    from mlflow.spark import _save_model_metadata  # writes MLmodel and requirements as mlflow.spark does

    if staging_root is None:
        raise ValueError("staging_root is required: a folder the Spark Connect server can write")
    staging = os.path.join(staging_root, f"model-{uuid.uuid4().hex[:12]}")
    os.makedirs(path, exist_ok=True)
    try:
        spark_model.write().overwrite().save(staging)
        shutil.copytree(staging, os.path.join(path, SPARK_MODEL_FOLDER))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(staging_root)
    _save_model_metadata(
        dst_dir=path,
        spark_model=spark_model,
        mlflow_model=mlflow_model if mlflow_model is not None else Model(),
        conda_env=None,
        code_paths=None,
        signature=signature,
        pip_requirements=pip_requirements,
    )


def load_pyfunc_over_connect(path: str, session: Any, name: str) -> Any:
    """The `spark` flavor model downloaded at `path` as an `mlflow.pyfunc.PyFuncModel`, its
    PipelineModel read by the Spark Connect server of `session`; `name` names the model in
    errors.

    Raises:
        ModelError: the server cannot read the model's files.
    """
    from mlflow.models import Model
    from mlflow.pyfunc import PyFuncModel
    from mlflow.spark import _PyFuncModelWrapper

    from brickyard.engines.spark_connect import load_pipeline_model
    from brickyard.ml.errors import ModelError

    meta = Model.load(path)
    folder = os.path.join(path, meta.flavors["spark"].get("model_data", SPARK_MODEL_FOLDER))
    try:
        spark_model = load_pipeline_model(session, os.path.abspath(folder))
    except Exception as exc:
        raise ModelError(
            f"the Spark Connect server cannot load the MLlib model {name} from {folder}: {' '.join(str(exc).split())[:300]}",
            hint="the server reads the model's files by path: it must see that folder where brickyard does "
            "(the lake at the same path); or score it with a local Spark session (spark: master: local[*])",
        ) from exc
    return PyFuncModel(model_meta=meta, model_impl=_PyFuncModelWrapper(session, spark_model, meta.signature))


def _remove_if_empty(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:
        pass  # another model is being staged there, or it is already gone
