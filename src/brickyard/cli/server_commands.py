"""`brickyard server` and `brickyard tokens create|list|revoke`: the control plane.

FastAPI and uvicorn are imported inside `server` only, so other commands start fast.
"""

from __future__ import annotations

import socket
import sys
from enum import Enum
from typing import Annotated

import typer

from brickyard.cli.options import WorkspaceOption, open_workspace
from brickyard.cli.render import console, result_table
from brickyard.errors import BrickyardError

tokens_app = typer.Typer(
    name="tokens", help="API tokens for the control plane and model serving.", no_args_is_help=True
)


class RoleChoice(str, Enum):
    reader = "reader"
    runner = "runner"
    admin = "admin"


@tokens_app.command("create")
def create_token(
    role: Annotated[RoleChoice, typer.Option("--role", help="reader < runner < admin.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    rate_limit: Annotated[
        float | None, typer.Option("--rate-limit", min=0.001, help="Requests per second (model serving).")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Create a token and print it once (on stdout; everything else goes to stderr)."""
    from brickyard.runtime.tokens import TokenStore

    record, token = TokenStore(open_workspace(workspace).state_url).create(
        role.value, name=name, rate_limit=rate_limit
    )
    typer.echo(token)
    label = f", name {record.name!r}" if record.name else ""
    sys.stderr.write(
        f"created token {record.id} (role {record.role.value}{label}). It is shown only this once: "
        f"store it now. Send it as `Authorization: Bearer <token>`; revoke it with "
        f"`brickyard tokens revoke {record.id}`.\n"
    )


@tokens_app.command("list")
def list_tokens(workspace: WorkspaceOption = None) -> None:
    """List tokens (never the tokens themselves): id, name, role, created, revoked."""
    from brickyard.runtime.tokens import TokenStore

    records = TokenStore(open_workspace(workspace).state_url).list()
    out = console()
    if not records:
        out.print("No tokens yet. Create one with: brickyard tokens create --role runner")
        return
    rows = [
        (r.id, r.name, r.role.value, "-" if r.rate_limit is None else f"{r.rate_limit:g}/s", r.created_at, r.revoked_at or "-")
        for r in records
    ]
    out.print(
        result_table(
            ["id", "name", "role", "rate limit", "created", "revoked"],
            ["VARCHAR", "VARCHAR", "VARCHAR", "VARCHAR", "TIMESTAMP", "VARCHAR"],
            rows,
            max_width=None,
        )
    )


@tokens_app.command("revoke")
def revoke_token(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (see `brickyard tokens list`).")],
    workspace: WorkspaceOption = None,
) -> None:
    """Revoke a token; it stops working at once."""
    from brickyard.runtime.tokens import TokenStore

    store = TokenStore(open_workspace(workspace).state_url)
    before = store.get(token_id)
    record = store.revoke(token_id)
    verb = "was already revoked" if before.revoked_at is not None else "revoked"
    console().print(f"token {record.id} ({record.role.value}) {verb} at {record.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


def server(
    host: Annotated[str, typer.Option("--host", help="Address to bind (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    triggers: Annotated[bool, typer.Option("--triggers/--no-triggers", help="Fire schedules and file triggers.")] = True,
    workspace: WorkspaceOption = None,
) -> None:
    """Run the control plane: start runs over HTTP, fire schedules and file-arrival triggers,
    and serve the web console at / (log in with a token from `brickyard tokens create`)."""
    import logging

    import uvicorn

    from brickyard.runtime.tokens import TokenStore
    from brickyard.server.app import create_app
    from brickyard.telemetry.logs import console_formatter, uvicorn_log_config

    ws = open_workspace(workspace)
    app = create_app(ws, triggers=triggers)
    sock = _bind(host, port)
    port = sock.getsockname()[1]
    logging.getLogger("brickyard").setLevel(logging.INFO)
    if not logging.getLogger("brickyard").handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(console_formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logging.getLogger("brickyard").addHandler(handler)

    out = console()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    out.print(f"brickyard control plane for [bold]{ws.config.name}[/bold] ({ws.root})")
    out.print(f"  console: {url}/  (log in with a token: `brickyard tokens create --role reader`)", markup=False)
    out.print(f"  API: {url}/api   docs: {url}/docs   health: {url}/healthz", markup=False)
    loop = app.state.triggers
    if loop is None:
        out.print("  triggers: off (--no-triggers)")
    else:
        lines = [trigger.describe() for trigger in loop.triggers()]
        if not lines:
            out.print("  triggers: none (add `schedule:` or `trigger: {file_arrival: ...}` to a pipeline)", markup=False)
        else:
            out.print("  triggers:")
        for line in lines:
            out.print(f"    {line}", markup=False)
    active = len(TokenStore(ws.state_url).list(include_revoked=False))
    have = f"{active} active token{'s' if active != 1 else ''}" if active else "no tokens yet"
    out.print(f"  tokens: {have}; create one with `brickyard tokens create --role runner`", markup=False)
    out.print(f"  start a run: curl -X POST -H 'Authorization: Bearer <token>' {url}/api/jobs/<pipeline>/runs", markup=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        out.print(f"[yellow]  listening on {host}: reachable from the network, without TLS[/yellow]")
    config = uvicorn.Config(app, host=host, port=port, log_level="info", access_log=True, log_config=uvicorn_log_config())
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: a clean stop
        pass
    finally:
        sock.close()


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket, so that a busy port is one clear error before anything starts.

    Raises:
        BrickyardError: the address cannot be bound.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        # from None: the OSError's strerror is in the message (noise)
        raise BrickyardError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="pick another --port (another server may be running there)",
        ) from None
    return sock


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command()(server)
    app.add_typer(tokens_app, name="tokens")
