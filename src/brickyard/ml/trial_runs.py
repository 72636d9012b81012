"""The MLflow child runs of a study's trials, written by a process of their own.

A trial hands its finished record (`TrialRun`: name, tags, params, metrics, status, start
and end times) to `TrialRunWriter.submit`, which puts it on a pipe and returns at once; a
spawned process creates the run, logs it in one batch and ends it. The trials never wait
for MLflow, and MLflow's ORM work never competes with a trial's fit for this process's
GIL: written by a thread instead, the same writes cost 15-20% of a 0.4 s trial on two
cores (bench/tuning.py's overhead, against 14 ms of writes per trial timed alone).
`close` waits for every run and answers trial number -> MLflow run id.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from typing import Any

from brickyard.ml.errors import TuningError

_WAIT_SECONDS = 1.0  # between checks that the writer is still alive while waiting for it


@dataclass(frozen=True)
class TrialRun:
    """One trial's MLflow run: created with `tags` at `start_ms`, ended with `status` at
    `end_ms`; `metrics` as (key, value, step)."""

    trial: int
    experiment_id: str
    name: str
    tags: dict[str, str]
    params: dict[str, str]
    metrics: list[tuple[str, float, int]]
    end_tags: dict[str, str]
    status: str
    start_ms: int
    end_ms: int


@dataclass
class Written:
    """What the writer process answers at the end: run ids by trial, failures by trial."""

    run_ids: dict[int, str] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


class TrialRunWriter:
    """A spawned process that writes `TrialRun`s to the MLflow store at `tracking_uri`."""

    def __init__(self, tracking_uri: str) -> None:
        context = multiprocessing.get_context("spawn")
        self._jobs, self._sender = context.Pipe(duplex=False)
        self._answer, self._replier = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_serve, args=(tracking_uri, self._jobs, self._replier), name="brickyard-trial-runs",
        )
        self._process.start()
        self._jobs.close()
        self._replier.close()
        self._closed = False
        self._broken = False

    def submit(self, run: TrialRun) -> None:
        """Queue `run` for writing (returns before it is written); a writer that is gone
        is reported by `close`."""
        self._send(run)

    def _send(self, message: TrialRun | None) -> None:
        if self._broken:
            return
        try:
            self._sender.send(message)
        except OSError:  # the writer is gone (a broken pipe)
            self._broken = True

    def close(self) -> dict[int, str]:
        """Wait for every queued run; trial number -> MLflow run id.

        Raises:
            TuningError: the writer died, or a run could not be written (the first is named).
        """
        if self._closed:
            return {}
        self._closed = True
        try:
            self._send(None)
            self._sender.close()
            written = self._receive()
        finally:
            self._process.join(timeout=30)
            if self._process.is_alive():
                self._process.kill()
        if written.errors:
            trial, reason = min(written.errors.items())
            raise TuningError(f"recording trial {trial} as an MLflow run failed: {reason}",
                              hint="check the workspace's MLflow store (mlflow.db)")
        return written.run_ids

    def _receive(self) -> Written:
        """The writer's answer, once it has written every run."""
        while not self._broken:
            try:
                if self._answer.poll(_WAIT_SECONDS):
                    answer: Written = self._answer.recv()
                    return answer
            except EOFError:
                break
            if not self._process.is_alive():
                break
        self._process.join(timeout=30)
        raise TuningError(
            f"the process writing the trials' MLflow runs ended (exit code {self._process.exitcode})",
            hint="check the workspace's MLflow store (mlflow.db) and the machine's memory",
        )

    def abandon(self) -> None:
        """Stop the writer without waiting (the study failed before its trials ended)."""
        if not self._closed:
            self._closed = True
            self._sender.close()
            self._process.kill()
            self._process.join()


def _serve(tracking_uri: str, jobs: Any, replier: Any) -> None:
    """The writer process: write each run received until `None`, then answer `Written`."""
    from brickyard.ml import tracking

    client = tracking.client_for(tracking_uri)
    written = Written()
    while True:
        try:
            run = jobs.recv()
        except EOFError:
            return  # the parent is gone: nobody to answer
        if run is None:
            break
        try:
            written.run_ids[run.trial] = write(client, run)
        except Exception as exc:  # noqa: BLE001 - answered to the parent, which raises it
            written.errors[run.trial] = f"{type(exc).__name__}: {exc}"
    replier.send(written)


def write(client: Any, run: TrialRun) -> str:
    """Create, log and end `run` with `client` (an `MlflowClient`); its run id."""
    from mlflow.entities import Metric, Param, RunTag

    created = client.create_run(run.experiment_id, start_time=run.start_ms, tags=run.tags, run_name=run.name)
    run_id = str(created.info.run_id)
    client.log_batch(
        run_id,
        metrics=[Metric(key, value, run.end_ms, step) for key, value, step in run.metrics],
        params=[Param(key, value) for key, value in run.params.items()],
        tags=[RunTag(key, value) for key, value in run.end_tags.items()],
    )
    client.set_terminated(run_id, run.status, end_time=run.end_ms)
    return run_id
