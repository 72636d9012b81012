"""The `brickyard` command: a thin layer over `brickyard.Workspace`.

Exit codes: 0 success, 1 a user error (`error: ...` on stderr), 2 bad usage. A traceback
is shown only with `--debug` (or `BRICKYARD_DEBUG=1`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Annotated

import typer

from brickyard.cli import (
    feature_commands,
    lake_commands,
    model_commands,
    monitor_commands,
    online_commands,
    pipeline_commands,
    serve_commands,
    server_commands,
    slo_commands,
    tune_commands,
    workspace_commands,
)
from brickyard.errors import BrickyardError
from brickyard.telemetry.logs import LOG_FORMAT_ENV, json_logs, use_log_format


class LogFormat(str, Enum):
    """`--log-format`: lines for people, or JSON objects for machines."""

    text = "text"
    json = "json"


app = typer.Typer(
    name="brickyard",
    help="A lakehouse ML platform on your own machine: Delta lake, SQL, pipelines, MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"brickyard {installed_version()}")
        raise typer.Exit()


def installed_version() -> str:
    """The installed distribution's version (the package's own when run from a source tree)."""
    from importlib import metadata

    import brickyard

    try:
        return metadata.version("brickyard")
    except metadata.PackageNotFoundError:
        return brickyard.__version__


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print brickyard's version and exit."
    ),
    log_format: Annotated[LogFormat | None, typer.Option(
        "--log-format", case_sensitive=False, show_default="text",
        help="Log lines as text, or as JSON objects (one per line on stderr: time, level, logger, message, "
             "run_id/task/trace_id when known); processes started from here inherit it.",
    )] = None,
) -> None:
    """A lakehouse ML platform on your own machine: Delta lake, SQL, pipelines, MLflow."""
    use_log_format(log_format.value if log_format is not None else os.environ.get(LOG_FORMAT_ENV, "text"))


workspace_commands.register(app)
lake_commands.register(app)
pipeline_commands.register(app)
server_commands.register(app)
model_commands.register(app)
serve_commands.register(app)
feature_commands.register(app)
monitor_commands.register(app)
tune_commands.register(app)
slo_commands.register(app)
online_commands.register(app)  # after any module that makes the `features` group


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns (and, as a script, exits with) the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("BRICKYARD_DEBUG") == "1"
    # MLflow draws a progress bar per artifact it downloads; the commands read small JSON
    # artifacts (a model's training set, a tuning leaderboard) and the bars were noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="brickyard", standalone_mode=False)
    except typer.Abort:
        _error("aborted")
        return 130
    except typer.TyperException as exc:  # typer's own (vendored click) usage errors
        if debug:
            raise
        format_message = getattr(exc, "format_message", None)
        _error(format_message() if format_message else str(exc))
        return 2
    except BrickyardError as exc:
        if debug:
            raise
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return result if isinstance(result, int) else 0


def _error(message: str) -> None:
    if json_logs():  # `--log-format json`: stderr holds only JSON lines
        logging.getLogger("brickyard.cli").error("%s", message)
        return
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
