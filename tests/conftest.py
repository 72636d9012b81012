"""Shared fixtures: workspaces, and real services started on loopback for the session.

A service the tests need but cannot find is a failure that names the install command,
never a silent skip: CI must run everything.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "src" / "brickyard" / "demo" / "data"
AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key (not a secret).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited with code {process.returncode} before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {seconds} s")


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after `grace` seconds."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


@dataclass(frozen=True)
class Azurite:
    """A running Azurite blob service."""

    port: int

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"
        )

    def create_container(self) -> str:
        from azure.storage.blob import BlobServiceClient

        name = f"lake{uuid.uuid4().hex[:12]}"
        BlobServiceClient.from_connection_string(self.connection_string).create_container(name)
        return name


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """Azurite's blob service on a free loopback port, for the whole session."""
    local = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    exe = str(local) if local.exists() else shutil.which("azurite-blob")
    if exe is None:
        pytest.fail("Azurite is not installed: run `make services` (npm install --prefix .tools azurite)")
    port = free_port()
    folder = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [exe, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(folder),
         "--skipApiVersionCheck", "--loose", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield Azurite(port)
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server on a free loopback port for the whole session (no persistence):
    its URL, redis://127.0.0.1:PORT/0. Tests use their own key prefixes or FLUSHDB."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail("redis-server is not installed: run `make services` (apt-get install redis-server)")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
         "--appendonly", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)


class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free loopback port.

    `stop(mode="immediate")` then `start()` simulates a database crash and restart in the
    middle of a test; the port, data and password stay the same. PostgreSQL refuses to run
    as root, so as root the server binaries run as the `postgres` user (`runuser`). Also
    used by bench/score_export.py.
    """

    PASSWORD = "brickyard-test"  # a throwaway cluster on loopback, not a secret

    def __init__(self, folder: Path | None = None, port: int | None = None) -> None:
        self.bindir = find_postgres_bindir()
        self.folder = Path(folder or tempfile.mkdtemp(prefix="brickyard-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = port or free_port()
        self.user = postgres_os_user()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        if self.user:
            shutil.chown(self.folder, self.user)
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.PASSWORD + "\n")
        if self.user:
            shutil.chown(pwfile, self.user)
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=scram-sha-256",
                 f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the `postgres` database as the `postgres` superuser."""
        return f"postgresql+psycopg://postgres:{self.PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start (or restart after a stop) and wait until it accepts connections."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} "
                   "-c fsync=off -c full_page_writes=off -c max_connections=50")
        self._pg("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (clean) or `immediate` (like a crash; recovery on start)."""
        self._pg("pg_ctl", "stop", "-w", "-t", "60", "-D", str(self.data), "-m", mode)

    @property
    def running(self) -> bool:
        done = self._pg("pg_ctl", "status", "-D", str(self.data), check=False)
        return done.returncode == 0

    def destroy(self) -> None:
        """Stop if running and delete the cluster's folder."""
        if self.data.exists() and self.running:
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.folder)
        if check and done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}{log}")
        return done


def find_postgres_bindir() -> Path:
    """The folder of initdb/pg_ctl: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    raise RuntimeError("PostgreSQL is not installed: run `make services` (apt-get install postgresql)")


def postgres_os_user() -> str | None:
    """The OS user to run the server as: None when not root, else `postgres`."""
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root needs a `postgres` OS user to run PostgreSQL: "
            "run `make services` (apt-get install postgresql creates it)"
        ) from None
    return "postgres"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a free loopback port, for the whole session (restartable)."""
    try:
        server = PostgresServer()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def abfs_workspace(azurite: Azurite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A workspace whose lake is a fresh container in Azurite (key passed as a secret reference)."""
    from brickyard import Workspace

    container = azurite.create_container()
    monkeypatch.setenv("AZURITE_TEST_KEY", AZURITE_KEY)
    (tmp_path / "brickyard.yaml").write_text(
        "name: azure_test\n"
        "lake:\n"
        f"  root: abfs://{container}/brickyard\n"
        "  storage_options:\n"
        f"    account_name: {AZURITE_ACCOUNT}\n"
        "    account_key: ${env:AZURITE_TEST_KEY}\n"
        f"    endpoint: {azurite.endpoint}\n"
        "    allow_http: 'true'\n"
    )
    return Workspace.open(tmp_path)


@pytest.fixture
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An empty local workspace."""
    from brickyard import Workspace

    return Workspace.init(tmp_path / "ws")


SPARK_TEST_CONFIG = """
engine: spark
spark:
  master: local[2]
  conf:
    spark.sql.shuffle.partitions: "2"
    spark.default.parallelism: "2"
"""


@pytest.fixture
def spark_workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An empty local workspace whose engine is Spark in local mode. Every test using it
    shares one Spark session per pytest process (same config), so only the first pays
    Spark's start-up."""
    from brickyard import Workspace

    ws = Workspace.init(tmp_path / "ws")
    text = ws.config_path.read_text(encoding="utf-8").replace("engine: duckdb\n", "")
    ws.config_path.write_text(text + SPARK_TEST_CONFIG, encoding="utf-8")
    return Workspace.open(ws.root)


@dataclass(frozen=True)
class SparkConnectServer:
    """A running Spark Connect server (from the installed pyspark package) on loopback."""

    port: int
    log: Path

    @property
    def remote(self) -> str:
        return f"sc://127.0.0.1:{self.port}"


def connect_server_command(port: int) -> list[str]:
    """spark-submit of Spark's Connect server in local[2], bound to 127.0.0.1:`port`."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    return [
        str(spark_home / "bin" / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master", "local[2]",
        "--name", "brickyard-test-connect",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.default.parallelism=2",
        "--conf", "spark.driver.memory=2g",
        "--conf", "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs=false",
    ]


@pytest.fixture(scope="session")
def spark_connect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkConnectServer]:
    """A Spark Connect server on a free loopback port, for the whole session. Its Python
    workers run this interpreter with this checkout's sources (as a server's workers must
    have brickyard installed)."""
    import sys

    pytest.importorskip("pyspark")
    port = free_port()
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])),
    }
    env.pop("SPARK_HOME", None)
    with log.open("wb") as out:
        process = subprocess.Popen(connect_server_command(port), stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        try:
            wait_for_port(port, process, seconds=180)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; the server's log:\n{log.read_text(errors='replace')[-3000:]}") from exc
        yield SparkConnectServer(port, log)
    finally:
        stop_process(process, grace=20)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a service fixture get that service's marker, so `-m` selects them."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "azurite" in fixtures:
            item.add_marker(pytest.mark.azurite)
        if "postgres" in fixtures:
            item.add_marker(pytest.mark.postgres)
        if "spark_workspace" in fixtures or "spark_connect" in fixtures:
            item.add_marker(pytest.mark.spark)
