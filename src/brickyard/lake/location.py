"""Where the lake is: a local folder or an Azure (`abfs://`) URL, and how to reach it.

Storage options use delta-rs (object_store) names: `account_name`, `account_key`,
`sas_token`, `endpoint` (e.g. Azurite's `http://127.0.0.1:10000/devstoreaccount1`),
`allow_http`. The fsspec filesystem used for listing and raw files is derived from them,
so a user writes credentials once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from brickyard.config.secrets import resolve
from brickyard.errors import LakeError

if TYPE_CHECKING:
    import fsspec

REMOTE_SCHEMES = ("abfs", "abfss", "az")


@dataclass(frozen=True)
class LakeLocation:
    """The lake root (absolute path or URL) and its storage options (secrets unresolved)."""

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, root: str, options: dict[str, str], workspace: Path) -> LakeLocation:
        """Resolve a configured root relative to the workspace folder."""
        if "://" in root:
            scheme = urlparse(root).scheme
            if scheme not in REMOTE_SCHEMES:
                raise LakeError(
                    f"lake root {root!r} uses an unsupported scheme {scheme!r}",
                    hint="use a local folder or an abfs:// URL",
                )
            return cls(root.rstrip("/"), dict(options))
        path = Path(root) if Path(root).is_absolute() else workspace / root
        return cls(str(path.resolve()), dict(options))

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def uri(self, relative: str) -> str:
        """The full URI (or absolute path) of a lake-relative path."""
        relative = relative.lstrip("/")
        if self.is_local:
            return os.path.join(self.root, relative)
        return f"{self.root}/{relative}"

    def delta_options(self) -> dict[str, str] | None:
        """Storage options for delta-rs, secrets resolved; None for a local lake. An
        `endpoint` on a loopback host (Azurite) is given to delta-rs as its emulator mode
        (see `_emulator_options`)."""
        if self.is_local:
            return None
        return _emulator_options(self.resolved_options())

    def resolved_options(self) -> dict[str, str]:
        """The storage options as configured, secrets resolved."""
        return {key: resolve(value) for key, value in self.storage_options.items()}

    def fs_path(self, relative: str = "") -> str:
        """The path of a lake-relative path as the fsspec filesystem names it."""
        if self.is_local:
            return self.uri(relative).rstrip("/") or "/"
        parsed = urlparse(self.uri(relative))
        container = parsed.netloc.split("@", 1)[0]
        return f"{container}{parsed.path}".rstrip("/")

    @cached_property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        """An fsspec filesystem for listing and reading raw files."""
        if self.is_local:
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem()
        return _azure_filesystem(self.root, self.resolved_options())


ENDPOINT_KEYS = ("endpoint", "azure_storage_endpoint")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _emulator_options(options: dict[str, str]) -> dict[str, str]:
    """`options` for delta-rs, an Azurite `endpoint` (a loopback host) turned into
    `use_emulator`. Through `endpoint`, delta-rs 1.6 fails a table's third commit on Azurite
    ("Invalid table version: 1"; two commits work); in its emulator mode it does not.
    object_store takes the emulator's address only from the environment variable
    AZURITE_BLOB_STORAGE_URL, so it is set here, before each use."""
    endpoint = next((options[key] for key in ENDPOINT_KEYS if options.get(key)), None)
    if endpoint is None or "use_emulator" in options:
        return options
    parsed = urlparse(endpoint)
    if parsed.hostname not in LOOPBACK:
        return options
    os.environ["AZURITE_BLOB_STORAGE_URL"] = f"{parsed.scheme or 'http'}://{parsed.netloc}"
    kept = {key: value for key, value in options.items() if key not in ENDPOINT_KEYS}
    return {**kept, "use_emulator": "true"}


def _azure_filesystem(root: str, options: dict[str, str]) -> fsspec.AbstractFileSystem:
    try:
        import adlfs
    except ImportError as exc:
        raise LakeError(
            "an abfs:// lake needs the adlfs package",
            hint="pip install 'brickyard[azure]'",
        ) from exc
    netloc = urlparse(root).netloc
    account = options.get("account_name") or options.get("azure_storage_account_name")
    if account is None and "@" in netloc:
        account = netloc.split("@", 1)[1].split(".", 1)[0]
    key = options.get("account_key") or options.get("azure_storage_account_key")
    endpoint = options.get("endpoint") or options.get("azure_storage_endpoint")
    if endpoint:
        protocol = urlparse(endpoint).scheme or "https"
        parts = [f"DefaultEndpointsProtocol={protocol}", f"AccountName={account}"]
        if key:
            parts.append(f"AccountKey={key}")
        parts.append(f"BlobEndpoint={endpoint}")
        return adlfs.AzureBlobFileSystem(connection_string=";".join(parts) + ";")
    return adlfs.AzureBlobFileSystem(
        account_name=account, account_key=key, sas_token=options.get("sas_token")
    )
