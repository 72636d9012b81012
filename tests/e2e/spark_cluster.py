"""A Spark standalone cluster on loopback, started from the installed pyspark package.

`StandaloneCluster.start(shared)` runs `spark-class org.apache.spark.deploy.master.Master`
and one `...deploy.worker.Worker` (SPARK_HOME is the pyspark package folder), every port a
free one on 127.0.0.1, and waits until the worker has registered. `stop()` ends both
process groups (and the executors and Python workers under them).

The worker plays a second machine as far as one host allows: where this process may
(root, `unshare`), the worker runs in its own mount namespace with a private, empty `/tmp`
in which only the `shared` folder is mounted back, at the same path, as a cluster node
mounts the shared lake. So a file that the driver writes to its `/tmp` (or a worker to its)
is not seen by the other side, as on a real cluster. Its environment has no
PYSPARK_PYTHON: executors run whatever Python the driver tells them to.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from cli_helpers import free_port, wait_for_port

SPARK_HOME = Path(__import__("pyspark").__file__).parent
SPARK_CLASS = SPARK_HOME / "bin" / "spark-class"
SRC = Path(__file__).parents[2] / "src"

# In the worker's namespace: a fresh tmpfs with `shared` bound into it, moved onto /tmp.
PRIVATE_TMP = (
    'set -e; node=/tmp/brickyard-node-$$; mkdir "$node"; mount -t tmpfs tmpfs "$node"; '
    'mkdir -p "$node/${SHARED#/tmp/}"; mount --bind "$SHARED" "$node/${SHARED#/tmp/}"; '
    'mount --move "$node" /tmp; exec "$@"'
)


def private_tmp_possible() -> bool:
    """Whether the worker can get a private /tmp (root with `unshare`)."""
    return os.geteuid() == 0 and shutil.which("unshare") is not None


@dataclass
class StandaloneCluster:
    """One master and one worker; `url` is the `spark://` master URL."""

    shared: Path
    logs: Path
    master_port: int = 0
    master_ui_port: int = 0
    node_local_tmp: bool = False
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @classmethod
    def start(cls, shared: Path, *, cores: int = 2, memory: str = "2g") -> StandaloneCluster:
        """Start the master and a worker with `cores` and `memory`; `shared` (under /tmp)
        is the folder the worker sees at the same path.

        Raises:
            RuntimeError: a daemon exited or did not come up within a minute (logs named).
        """
        cluster = cls(shared.resolve(), shared.resolve() / "spark-logs", free_port(), free_port())
        cluster.logs.mkdir(parents=True, exist_ok=True)
        try:
            master = cluster._spawn(
                "master",
                ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                 "--port", str(cluster.master_port), "--webui-port", str(cluster.master_ui_port)],
            )
            wait_for_port(cluster.master_port, master)
            worker_args = [
                "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--port", str(free_port()),
                "--webui-port", str(free_port()), "--cores", str(cores), "--memory", memory,
                "--work-dir", str(cluster.shared / "spark-work"), cluster.url,
            ]
            cluster.node_local_tmp = private_tmp_possible() and str(cluster.shared).startswith("/tmp/")
            cluster._spawn("worker", worker_args, private_tmp=cluster.node_local_tmp)
            cluster._wait_for_worker()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _spawn(self, name: str, args: list[str], *, private_tmp: bool = False) -> subprocess.Popen[bytes]:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PYSPARK_", "SPARK_"))}
        env.update({
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_NO_DAEMONIZE": "1",
            # The same brickyard as the driver's, at the same path: what every node needs.
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
            "SHARED": str(self.shared),
        })
        command = [str(SPARK_CLASS), *args]
        if private_tmp:
            command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_TMP, "node", *command]
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the daemon holds it
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def _wait_for_worker(self, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited with {process.returncode}; see {self.logs}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.master_ui_port}/json/", timeout=2) as reply:
                    if json.load(reply).get("aliveworkers", 0) >= 1:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"no Spark worker registered with {self.url} within {seconds:.0f} s; see {self.logs}")

    def stop(self) -> None:
        """Stop the worker, then the master (each whole process group)."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            # the empty mount point the worker's /tmp was made on (named by its pid)
            shutil.rmtree(f"/tmp/brickyard-node-{process.pid}", ignore_errors=True)
        self.processes.clear()

    def log_tail(self, lines: int = 40) -> str:
        """The end of each daemon's log and of each executor's stderr, for a failure message."""
        parts = []
        for path in sorted([*self.logs.glob("*.log"), *(self.shared / "spark-work").glob("*/*/stderr")]):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- {path}\n" + "\n".join(text))
        return "\n".join(parts)

