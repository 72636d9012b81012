"""The ML lifecycle over MLflow: train, evaluate, gate and promote, reproduce.

MLflow is the tracking server, model format and registry; scikit-learn (and LightGBM) fit.
Both are imported inside the functions of this package, never when it is imported, so the
CLI and the data task kinds stay fast.

    spec.py         the YAML options of the train / evaluate / promote task kinds
    tracking.py     MLflow pointed at a workspace (SQLite store, artifact folder)
    data.py         training rows at pinned Delta versions; column checks; the seeded split
    preprocess.py   impute + scale / one-hot, by column type
    estimators.py   short names and import paths -> estimators
    kmeans.py       segmentation: k by silhouette, cluster profile and labels
    metrics.py      held-out metrics and evaluation plots
    training.py     fit, and train = fit + MLflow run + registered version
    evaluation.py   evaluate a registered version on its held-out rows
    explanations.py SHAP values per source feature; importance_rank_change
    fairness.py     Fairlearn MetricFrame by sensitive features, bootstrap intervals
    robustness.py   the metric's drop under noise and missing values
    registry.py     versions by number / latest / alias / run; champion, challenger
    gate.py         promotion rules -> mlflow MetricThreshold; aliases and tags
    reproduce.py    retrain from a run's pinned inputs and compare metrics
    errors.py       the ModelError tree

Scoring (`scoring.py`) belongs to the `score` task kind.
"""
