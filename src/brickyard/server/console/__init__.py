"""The workspace console: server-rendered pages over the lake, pipelines, models, endpoints,
monitors and features, served by `brickyard server` at `/` (no build step: Jinja2 templates
and one CSS file ship in this package).

A browser logs in with a token (`brickyard tokens create --role reader`); the session is a
signed HttpOnly, SameSite=Strict cookie naming the token's id (see `session.py`). Without a
valid session every page redirects to `/login`. Reading needs a reader token; the Trigger
button (POST `/pipelines/{name}/run`) needs a runner, checked on the server (a reader gets
403). The JSON API under `/api` keeps its bearer tokens and is not affected.

>>> import tempfile
>>> from fastapi import FastAPI
>>> from brickyard import Workspace
>>> from brickyard.runtime.state import StateStore
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> app = FastAPI()
>>> mount(app, ws, StateStore(ws.state_url), launch=lambda name, token: None)
>>> "/login" in {route.path for route in app.routes}
True
"""

from brickyard.server.console.pages import Launch, mount

__all__ = ["Launch", "mount"]
