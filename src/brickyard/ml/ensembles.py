"""Ensembles of estimators: `voting` and `stacking`, as estimator names.

```yaml
estimator: voting          # soft voting (classification) / averaging (regression)
params:
  members:
    - {estimator: lightgbm, params: {num_leaves: 31}}
    - {estimator: random_forest, params: {n_estimators: 200}}
    - {estimator: logistic_regression, params: {C: 0.5}}
```

`stacking` takes the same `members` (and `cv:`, default 5): scikit-learn's
`StackingClassifier` with a `LogisticRegression` on the members' out-of-fold
probabilities, or `StackingRegressor` with a `RidgeCV` on their predictions. Each member is
built as `build_estimator` builds it alone (brickyard's defaults, the split seed), so an
ensemble of a study's trials repeats their configurations exactly. The model is a plain
scikit-learn estimator: MLflow logs, loads, scores and serves it as any other, and
`reproduce` refits it from `train_spec.json` (estimator `voting`, the members as params).

`tune` builds both from its top trials (see `brickyard.ml.tuning`); `train` takes them too.
"""

from __future__ import annotations

from typing import Any

from brickyard.ml.errors import EstimatorError
from brickyard.ml.spec import Problem

ENSEMBLES = ("voting", "stacking")
CLASSES: dict[str, dict[str, str]] = {
    "voting": {"classification": "sklearn.ensemble:VotingClassifier", "regression": "sklearn.ensemble:VotingRegressor"},
    "stacking": {
        "classification": "sklearn.ensemble:StackingClassifier",
        "regression": "sklearn.ensemble:StackingRegressor",
    },
}
OPTIONS = {"voting": {"members", "weights"}, "stacking": {"members", "cv"}}
STACKING_CV = 5


def build_ensemble(name: str, problem: Problem, params: dict[str, Any], seed: int) -> Any:
    """An unfitted `voting` or `stacking` estimator of `params["members"]`.

    Raises:
        EstimatorError: no members, an unknown option, a member that does not build, or a
            problem other than classification or regression.
    """
    from brickyard.ml.estimators import build_estimator

    problems = _problems(name, problem, params)
    if problems:
        raise EstimatorError(problems[0], hint=_HINT)
    members = [
        (f"m{i}_{member['estimator']}", build_estimator(member["estimator"], problem, dict(member.get("params") or {}), seed))
        for i, member in enumerate(params["members"])
    ]
    from sklearn import ensemble, linear_model

    if name == "voting":
        if problem == "classification":
            return ensemble.VotingClassifier(members, voting="soft", weights=params.get("weights"))
        return ensemble.VotingRegressor(members, weights=params.get("weights"))
    cv = int(params.get("cv", STACKING_CV))
    if problem == "classification":
        final = linear_model.LogisticRegression(max_iter=1000, random_state=seed)
        return ensemble.StackingClassifier(members, final_estimator=final, cv=cv, stack_method="predict_proba")
    return ensemble.StackingRegressor(members, final_estimator=linear_model.RidgeCV(), cv=cv)


_HINT = "params: {members: [{estimator: lightgbm, params: {...}}, {estimator: random_forest}]}"


def _problems(name: str, problem: Problem | None, params: dict[str, Any]) -> list[str]:
    if problem is not None and problem not in ("classification", "regression"):
        return [f"estimator {name!r} does classification or regression, not {problem}"]
    unknown = sorted(set(params) - OPTIONS[name])
    if unknown:
        return [f"estimator {name!r} takes {', '.join(sorted(OPTIONS[name]))}, not {', '.join(unknown)}"]
    members = params.get("members")
    if not isinstance(members, list) or len(members) < 2:
        return [f"estimator {name!r} needs members: a list of at least two {{estimator: ..., params: {{...}}}}"]
    for i, member in enumerate(members):
        if not isinstance(member, dict) or "estimator" not in member or set(member) - {"estimator", "params"}:
            return [f"member {i + 1} of {name!r} is {member!r}; a member is {{estimator: NAME, params: {{...}}}}"]
        if member["estimator"] in ENSEMBLES:
            return [f"member {i + 1} of {name!r} is an ensemble itself ({member['estimator']}); list plain estimators"]
    return []


def ensemble_problems(name: str, problem: Problem | None, params: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with an ensemble's params, found without data (as
    `estimators.estimator_problems` reports): its own options, then each member's."""
    from brickyard.ml.estimators import estimator_problems

    own = _problems(name, problem, params)
    if own:
        return [(("params",), f"{message} (hint: {_HINT})") for message in own]
    found = []
    for i, member in enumerate(params["members"]):
        for at, message in estimator_problems(member["estimator"], problem, dict(member.get("params") or {})):
            found.append((("params", "members", str(i), *at), f"member {i + 1}: {message}"))
    return found


def member_estimators(params: dict[str, Any]) -> list[str]:
    """The estimator names of an ensemble's members (for its pip requirements)."""
    return [str(member["estimator"]) for member in params.get("members", []) if isinstance(member, dict)]
