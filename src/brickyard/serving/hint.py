"""What `brickyard demo` prints about serving: the serve command and a curl that scores."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brickyard.workspace import Workspace

# One real passenger of the shipped data (PassengerId 1: Mr. Owen Harris Braund).
PASSENGER = {
    "columns": ["Age", "SibSp", "Parch", "Fare", "Pclass", "Sex", "Embarked"],
    "data": [[22.0, 1, 0, 7.25, 3, "male", "S"]],
}


def demo_hint(
    ws: Workspace,
    *,
    model: str = "titanic",
    host: str = "127.0.0.1",
    port: int = 8080,
    keys_only: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Shell lines that serve the Titanic champion and score one passenger with curl;
    `keys_only` (model -> entity keys) serves those models' champions too, each scored by
    a request that carries only the keys (the server looks the features up online).

    >>> from pathlib import Path
    >>> class Ws: root = Path("/tmp/demo")
    >>> demo_hint(Ws())[0]
    '# serve the champion (auth on; add --no-auth to try it without a token)'
    """
    body = json.dumps({"dataframe_split": PASSENGER}, separators=(",", ":"))
    where = f" --workspace {ws.root}"
    served = " ".join(f"{name}@champion" for name in [model, *(keys_only or {})])
    lines = [
        "# serve the champion (auth on; add --no-auth to try it without a token)",
        f"brickyard serve {served} --port {port}{where}",
        "# in another shell: a reader token, then score one passenger",
        f"export BRICKYARD_TOKEN=$(brickyard tokens create --role reader --name demo{where})",
        _curl(host, port, model, body),
    ]
    for name, keys in (keys_only or {}).items():
        lines.append(f"# {name}: the request carries only {', '.join(keys)}; the features are looked up online")
        lines.append(_curl(host, port, name, json.dumps({"dataframe_records": [keys]}, separators=(",", ":"))))
    lines.append(f"# probabilities: add ?predict_proba=true; metrics: curl -s http://{host}:{port}/metrics")
    return lines


def _curl(host: str, port: int, model: str, body: str) -> str:
    return (
        f"curl -s -X POST http://{host}:{port}/serving-endpoints/{model}/invocations "
        f"-H \"Authorization: Bearer $BRICKYARD_TOKEN\" -H 'Content-Type: application/json' "
        f"-d '{body}'"
    )
