"""Shared fixtures: workspaces, and real services started on loopback for the session.

A service the tests need but cannot find is a failure that names the install command,
never a silent skip: CI must run everything.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
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
        process.terminate()
        process.wait(timeout=10)


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a service fixture get that service's marker, so `-m` selects them."""
    for item in items:
        if "azurite" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.azurite)
