"""Task logs: one file per task of a run, `.brickyard/logs/<run_id>/<task>.log`; every
attempt of the task appends to it under its own header."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

from brickyard.errors import BrickyardError, suggest
from brickyard.telemetry.logs import FieldsFilter, JsonFormatter, json_logs

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"


def logs_folder(root: Path, run_id: str) -> Path:
    """The folder of a run's task logs under workspace `root`."""
    return root / ".brickyard" / "logs" / run_id


def task_log_path(root: Path, run_id: str, task: str) -> Path:
    """The log file of one task of a run."""
    return logs_folder(root, run_id) / f"{task}.log"


def open_task_logger(path: Path, name: str, **fields: Any) -> logging.Logger:
    """A private logger (not registered globally, no propagation) appending to `path`. With
    `--log-format json` its records also go to stderr as JSON lines carrying `fields`
    (run id, task, attempt: see `set_log_field`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.Logger(name, level=logging.DEBUG)
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    if json_logs():
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(JsonFormatter())
        stream.setLevel(logging.INFO)
        logger.addHandler(stream)
    logger.addFilter(FieldsFilter(**fields))
    return logger


def set_log_field(logger: logging.Logger, name: str, value: Any) -> None:
    """Change a field that `open_task_logger` adds to the logger's records."""
    for found in logger.filters:
        if isinstance(found, FieldsFilter):
            found.fields[name] = value


def close_task_logger(logger: logging.Logger) -> None:
    """Close the logger's files; later messages (a timed-out thread's) are dropped."""
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)
    logger.addHandler(logging.NullHandler())


def read_logs(
    root: Path, run_id: str, task: str | None = None, order: list[str] | None = None
) -> list[tuple[str, str]]:
    """(task, text) of a run's logs, of one task or all (tasks in `order` first, in that order).

    Raises:
        BrickyardError: the run has no logs, or no log for `task` (with close names).
    """
    folder = logs_folder(root, run_id)
    rank = {name: index for index, name in enumerate(order or [])}
    found = folder.glob("*.log") if folder.is_dir() else []
    files = sorted(found, key=lambda p: (rank.get(p.stem, len(rank)), p.name))
    if not files:
        raise BrickyardError(f"run {run_id} has no logs in {folder}", hint="`brickyard runs` lists run ids")
    if task is not None:
        names = [path.stem for path in files]
        if task not in names:
            raise BrickyardError(
                f"run {run_id} has no log for task {task!r}",
                hint=suggest(task, names) or f"tasks with logs: {', '.join(names)}",
            )
        files = [folder / f"{task}.log"]
    return [(path.stem, path.read_text(encoding="utf-8", errors="replace")) for path in files]
