"""`brickyard serve MODEL[@alias|/version] ...`: MLflow-compatible scoring endpoints.

FastAPI, uvicorn and MLflow are imported inside the command only.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from brickyard.cli.options import WorkspaceOption, open_workspace
from brickyard.errors import UsageError


def serve(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Registered models to serve: MODEL (alias champion), MODEL@alias or MODEL/version. Repeat for several.",
            metavar="MODEL[@ALIAS|/VERSION]...",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Let anyone who can reach the port score (no tokens).")] = False,
    strict_columns: Annotated[
        bool,
        typer.Option(
            "--strict-columns",
            help="Refuse (400) a request with a column the model's signature does not name; by default such columns are ignored, as MLflow does, and named in the X-Ignored-Columns header.",
        ),
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Serve registered models over HTTP: POST /serving-endpoints/MODEL/invocations (and /invocations for one model), /healthz, /readyz, /metrics, /docs, and MLflow's /ping, /health, /version.

    Requests are MLflow's scoring protocol: JSON (dataframe_split, dataframe_records, instances, inputs; params) or text/csv.

    Scoring needs `Authorization: Bearer <token>` (role reader or above: `brickyard tokens create --role reader`) unless --no-auth. Traffic policy (shadow, canary, rollout), the inference log and limits come from `endpoints:` in brickyard.yaml.
    """
    from brickyard.ml.registry import ModelRef
    from brickyard.ml.tracking import relocate_artifacts
    from brickyard.serving.server import ServeSpec, bind_socket, run
    from brickyard.serving.service import ServingService

    ws = open_workspace(workspace)
    refs = [ModelRef.parse(text) for text in models]
    for moved in relocate_artifacts(ws):  # a copied or moved workspace
        _Banner().write(f"{moved}\n")
    ServingService(ws, refs, auth=not no_auth).check_models()  # fail fast on a wrong name or alias
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        # from None: the OSError's strerror is in the message (noise)
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}", hint="pick another --port") from None
    bound_port = sock.getsockname()[1]
    out = _Banner()
    for ref in refs:
        out.write(f"serving {ref} at http://{host}:{bound_port}/serving-endpoints/{ref.name}/invocations\n")
    if len(refs) == 1:
        out.write(f"  (and at http://{host}:{bound_port}/invocations)\n")
    if no_auth:
        out.write(
            f"WARNING: authentication is OFF (--no-auth): anyone who can reach {host}:{bound_port} can score.\n"
        )
    else:
        out.write("auth: bearer tokens of role reader or above (brickyard tokens create --role reader)\n")
    out.write(f"workers: {workers}; docs at http://{host}:{bound_port}/docs; Ctrl+C stops (and flushes the inference log)\n")
    out.flush()
    if strict_columns:
        out.write("columns the model's signature does not name are refused (--strict-columns)\n")
        out.flush()
    spec = ServeSpec(workspace=str(ws.root), models=[str(ref) for ref in refs], auth=not no_auth, strict_columns=strict_columns)
    run(spec, host=host, port=bound_port, workers=workers, sock=sock)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(serve)


class _Banner:
    """Where `serve` says what it serves: stderr as text, or, with `--log-format json`, log
    records of the `brickyard.serve` logger (so stderr holds JSON lines only)."""

    def write(self, text: str) -> None:
        from brickyard.telemetry.logs import json_logs

        if not json_logs():
            sys.stderr.write(text)
            return
        import logging

        for line in text.splitlines():
            level = logging.WARNING if line.startswith("WARNING: ") else logging.INFO
            logging.getLogger("brickyard.serve").log(level, "%s", line.removeprefix("WARNING: "))

    def flush(self) -> None:
        sys.stderr.flush()
