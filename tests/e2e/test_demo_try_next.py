"""Every line `brickyard demo` prints under "Try next" works when run as printed.

A newcomer copies the block into a shell, line by line, from the folder where the demo
ran. This test does the same in a fresh demo workspace: it parses the block from the
demo's output (so it cannot drift from what the demo prints) and runs each line in a
shell session where `cd`, `export` and the activated virtual environment carry over
from one line to the next, with the virtual environment's `bin/` taken off PATH first,
so the activate line has to work.

What it changes, and why:
- the ports 8080 (serve) and 5000 (mlflow-ui) become free ports, so parallel test runs
  do not collide;
- lines that run until stopped (`brickyard serve`, `brickyard mlflow-ui`) start in the
  background; the test waits for their port, checks them, and stops them;
- the `pip install 'brickyard[spark]'` line runs with `--dry-run --no-index` added and
  must report "already satisfied": the test environment has the extras installed, and a
  test must never install into it or reach the network;
- the Spark line runs in its own test, marked `spark`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import free_port, wait_for_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVERS = ("brickyard serve ", "brickyard mlflow-ui", "brickyard server ")  # these run until stopped
SPARK_RUN = "brickyard run taxi_trips --engine spark"
PIP = "pip install "
DEMO_PORTS = {"serve": 8080, "mlflow-ui": 5000, "console": 8000}
LINE_TIMEOUT = 300


def try_next_block(stdout: str) -> list[str]:
    """The lines under "Try next" (indented two spaces), without the indent."""
    lines = stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("Try next"))
    block = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        block.append(line[2:])
    return block


@dataclass
class Ran:
    line: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass
class Shell:
    """Runs lines one at a time, as at a prompt: the folder and exported variables (and so
    an activated virtual environment) carry over to the next line."""

    folder: Path
    env: dict[str, str]
    state: Path
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.state.write_text(f"cd {shlex.quote(str(self.folder))}\n")

    def run(self, line: str) -> Ran:
        script = (
            f"source {shlex.quote(str(self.state))}\n{line}\nstatus=$?\n"
            f"{{ export -p; echo \"cd $(printf %q \"$PWD\")\"; }} > {shlex.quote(str(self.state))}\n"
            "exit $status\n"
        )
        started = time.monotonic()
        done = subprocess.run(["bash", "-c", script], env=self.env, capture_output=True, text=True, timeout=LINE_TIMEOUT)
        return Ran(line, done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def start(self, line: str, log: Path) -> subprocess.Popen[bytes]:
        """Start a line that runs until stopped, in its own process group."""
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-c", f"source {shlex.quote(str(self.state))}\nexec {line}"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.background.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the line's whole process group (mlflow-ui has children), then SIGKILL."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=15)
                os.killpg(process.pid, signal.SIGKILL)  # children left behind
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return

    def stop_all(self) -> None:
        for process in self.background:
            self.stop(process)


@dataclass(frozen=True)
class Demo:
    home: Path  # where the demo ran (and where its block starts)
    block: list[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    home = tmp_path_factory.mktemp("newcomer")
    env = {key: value for key, value in os.environ.items() if key != "BRICKYARD_WORKSPACE"}
    result = subprocess.run(
        [sys.executable, "-m", "brickyard.cli", "demo", "brickyard-demo", "--rows", "3000"],
        cwd=home, env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return Demo(home, try_next_block(result.stdout))


@pytest.fixture
def shell(demo: Demo, tmp_path: Path) -> Iterator[Shell]:
    """A session starting where the demo ran, with the venv's `bin/` off PATH."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {key: value for key, value in os.environ.items() if key not in ("BRICKYARD_WORKSPACE", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(part for part in env.get("PATH", "").split(os.pathsep) if part != venv_bin)
    session = Shell(demo.home, env, tmp_path / "state.sh")
    yield session
    session.stop_all()


def with_free_ports(block: list[str]) -> tuple[list[str], dict[str, int]]:
    """The block with the demo's fixed ports replaced by free ones."""
    ports = {name: free_port() for name in DEMO_PORTS}
    text = "\n".join(block)
    for name, port in DEMO_PORTS.items():
        assert re.search(rf"\b{port}\b", text), f"the demo no longer prints port {port} for {name}; update DEMO_PORTS"
        text = re.sub(rf"\b{port}\b", str(ports[name]), text)
    return text.splitlines(), ports


def port_of(line: str) -> int:
    found = re.search(r"--port (\d+)", line)
    assert found, f"a line that serves must say its --port: {line}"
    return int(found.group(1))


def check_ran(ran: Ran) -> None:
    assert ran.returncode == 0, f"`{ran.line}` exited {ran.returncode}:\n{ran.stdout[-2000:]}\n{ran.stderr[-2000:]}"
    assert "error:" not in ran.stderr, f"`{ran.line}`:\n{ran.stderr[-2000:]}"
    assert ran.stdout.strip() or ran.stderr.strip() or ran.line.startswith(("cd ", ". ", "export ")), f"`{ran.line}` printed nothing"


def test_the_block_activates_the_venv_then_goes_to_the_workspace(demo: Demo) -> None:
    first, second = demo.block[0], demo.block[1]
    if sys.prefix != sys.base_prefix:
        assert first.startswith(f". {Path(sys.prefix) / 'bin' / 'activate'}"), demo.block
    else:
        second = first
    assert second == "cd brickyard-demo", demo.block


def test_every_try_next_line_runs_as_printed(demo: Demo, shell: Shell, tmp_path: Path) -> None:
    block, _ = with_free_ports(demo.block)
    ran: list[str] = []
    for line in block:
        if line.startswith("#"):
            continue
        if line.startswith(SPARK_RUN):
            print(f"left to test_the_spark_line_runs (marker spark): {line}")
            continue
        if line.startswith(PIP):
            command = line.split("#")[0].rstrip() + " --dry-run --no-index"
            result = shell.run(command)
            check_ran(result)
            assert "Requirement already satisfied: brickyard[spark]" in result.stdout, result.stdout[-2000:]
            print(f"checked as already satisfied, nothing installed: {command}")
            ran.append(line)
            continue
        if line.startswith(SERVERS):
            port = port_of(line)
            process = shell.start(line, tmp_path / f"server-{port}.log")
            try:
                wait_for_port(port, process, seconds=240)
            except RuntimeError as exc:
                raise AssertionError(f"`{line}`: {exc}\n{(tmp_path / f'server-{port}.log').read_text()[-3000:]}") from None
            if line.startswith("brickyard mlflow-ui"):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
                    assert page.status == 200
                shell.stop(process)  # it holds four workers: free them for the lines below
            if line.startswith("brickyard server "):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as page:
                    shown = page.read().decode()
                    assert page.url.endswith("/login?next=%2F") and "Log in to the brickyard console" in shown
            ran.append(line)
            continue
        result = shell.run(line)
        check_ran(result)
        if line.startswith("curl ") and "/invocations" in line:
            assert len(json.loads(result.stdout)["predictions"]) == 1, result.stdout
        ran.append(line)
        print(f"ran in {result.seconds:.1f} s: {line}")
    assert any(line.startswith("brickyard serve ") for line in ran)
    assert any(line.startswith("curl ") for line in ran)
    assert any(line.startswith("brickyard server ") for line in ran)


@pytest.mark.spark
def test_the_spark_line_runs(demo: Demo, shell: Shell) -> None:
    setup = [line for line in demo.block[:2] if line.startswith((". ", "cd "))]
    spark = [line for line in demo.block if line.startswith(SPARK_RUN)]
    assert len(spark) == 1, demo.block
    for line in setup:
        check_ran(shell.run(line))
    result = shell.run(spark[0])
    check_ran(result)
    assert re.search(r"run \S+ succeeded", result.stdout), result.stdout[-2000:]
