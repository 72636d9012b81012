"""Shared helpers for the benchmarks in bench/: time a command, print a table, describe the machine.

A benchmark measures whole processes (start-up and imports included), because that is what
a user waits for. `measure` runs one command and samples the resident memory of it and all
its children every 20 ms with psutil; `best_of` repeats it and keeps every run.

    >>> run = measure([sys.executable, "-c", "pass"])
    >>> run.ok and run.wall_s > 0
    True
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Sequence

import psutil

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
POLL_S = 0.02


@dataclass
class Run:
    """One finished command: wall time, peak RSS (process + children) and its output."""

    command: list[str]
    wall_s: float
    peak_rss: int
    returncode: int
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def check(self) -> Run:
        """Raise with the command's stderr if it failed; return self otherwise."""
        if not self.ok:
            raise RuntimeError(
                f"command failed ({self.returncode}): {' '.join(self.command)}\n{self.stderr[-4000:]}"
            )
        return self


@dataclass
class Runs:
    """Repeated runs of one command; `best` is the fastest."""

    runs: list[Run] = field(default_factory=list)

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.wall_s)

    @property
    def walls(self) -> list[float]:
        return [run.wall_s for run in self.runs]


def _tree_rss(proc: psutil.Process) -> int:
    """RSS of a process and all its descendants (shared pages count once per process)."""
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(
    command: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
    poll_s: float = POLL_S,
    timeout_s: float | None = None,
) -> Run:
    """Run `command` to the end; return its wall time and peak RSS (itself + children).

    Wall time runs from just before the process is started to when it has exited. Memory is
    sampled every `poll_s` seconds on a side thread, so a very short spike can be missed.
    stdout and stderr are captured (to temporary files, so a chatty command does not block).
    """
    args = [str(part) for part in command]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            try:
                ps = psutil.Process(proc.pid)
            except psutil.Error:
                return
            while not done.is_set():
                peak = max(peak, _tree_rss(ps))
                done.wait(poll_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            returncode = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            returncode = proc.wait()
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        out.seek(0)
        err.seek(0)
        return Run(args, wall, peak, returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"))


def best_of(n: int, command: Sequence[str | os.PathLike[str]], **kwargs: object) -> Runs:
    """Run `command` n times (each must succeed); keep every run."""
    return Runs([measure(command, **kwargs).check() for _ in range(n)])  # type: ignore[arg-type]


def interleaved(n: int, commands: dict[str, Sequence[str | os.PathLike[str]]], **kwargs: object) -> dict[str, Runs]:
    """Run each command n times, round-robin (a b c a b c ...), so that a burst of load
    from elsewhere on the machine hits every variant alike; each run must succeed."""
    found = {name: Runs() for name in commands}
    for round_ in range(1, n + 1):
        for name, command in commands.items():
            print(f"  [{round_}/{n}] {name} ...", end=" ", flush=True)
            run = measure(command, **kwargs).check()  # type: ignore[arg-type]
            print(f"{run.wall_s:.2f} s", flush=True)
            found[name].runs.append(run)
    return found


# --- formatting -------------------------------------------------------------------------


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def human_rate(per_s: float) -> str:
    """12_345_678 -> '12.3 M'."""
    for div, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if per_s >= div:
            return f"{per_s / div:.2f}{suffix}"
    return f"{per_s:.0f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], markdown: bool = False) -> str:
    """An aligned text table (numbers right-aligned), or a Markdown one."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    numeric = [
        all(_looks_numeric(row[i]) for row in cells[1:]) and len(cells) > 1 for i in range(len(headers))
    ]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    if markdown:
        rule = "|" + "|".join(("-" * (w + 1) + ":") if num else ("-" * (w + 2)) for w, num in zip(widths, numeric)) + "|"
    else:
        rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _looks_numeric(text: str) -> bool:
    head = text.split(" ")[0].rstrip("x%s")
    try:
        float(head.replace(",", ""))
    except ValueError:
        return text in ("", "-")
    return True


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


# --- the machine ------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or platform's guess elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_facts() -> dict[str, str]:
    """Cores, RAM, CPU model and OS of this machine."""
    return {
        "cores": f"{os.cpu_count()} logical ({psutil.cpu_count(logical=False) or '?'} physical)",
        "ram": human_bytes(psutil.virtual_memory().total),
        "cpu": cpu_model(),
        "os": f"{platform.system()} {platform.release()} ({platform.machine()})",
    }


def versions(*packages: str) -> dict[str, str]:
    """Python's version and each installed package's (or 'not installed')."""
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def java_version() -> str:
    """First line of `java -version`, or 'not found'."""
    try:
        done = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    lines = (done.stderr or done.stdout).splitlines()
    return lines[0].strip() if lines else "not found"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. '0.52 0.61 0.40' (others' work shows here)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def facts_lines(facts: dict[str, str]) -> list[str]:
    """'key: value' lines, keys aligned."""
    width = max(map(len, facts))
    return [f"{key.ljust(width)}  {value}" for key, value in facts.items()]


def record_section(name: str, section: str, path: Path = REPO / "bench" / "RESULTS.md") -> Path:
    """Replace the `## name` section of RESULTS.md (up to the next `## `) with `section`,
    or append it; the other sections are left alone."""
    current = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^## {re.escape(name)}\n.*?(?=^## |\Z)", re.S | re.M)
    block = section.rstrip() + "\n\n"
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current, count=1)
    else:
        updated = current.rstrip() + "\n\n" + block
    path.write_text(updated.rstrip() + "\n")
    return path
