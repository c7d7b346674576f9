"""``python -m tui --web``: the same dashboard in a browser, through textual-serve.

Each browser tab gets its own dashboard process (``python -m tui`` under
Textual's web driver). The server binds 127.0.0.1 unless ``--host`` says
otherwise, and the dashboards it starts are read-only unless ``--actions`` is
given: a page anyone on the network can reach should not retry or discard jobs.
The websocket only accepts pages served from this server (a check on
``Origin``), so another web site open in the same browser cannot drive it.
A database URL reaches the dashboards through the environment (:data:`DB_ENV`),
never their command line: a URL may hold a password, and ``ps`` shows every
command line to every user of the host, while a process's environment is its
owner's to read.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from aiohttp import web
from textual_serve.server import Server

from runner.store.factory import is_url
from tui.source import DB_ENV

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def dashboard_command(*, db: str | Path | None, settings: str | Path | None,
                      refresh: float | None, actions: bool) -> str:
    """The shell command each browser session runs (the terminal dashboard itself).

    A URL ``db`` is left out: :func:`dashboard_environment` hands it over.
    """
    words = [sys.executable, "-m", "tui"]
    if db is not None and not is_url(str(db)):
        words += ["--db", str(Path(db).resolve())]
    if settings is not None:
        words += ["--settings", str(Path(settings).resolve())]
    if refresh is not None:
        words += ["--refresh", f"{refresh:g}"]
    if not actions:
        words.append("--read-only")
    return shlex.join(words)


def dashboard_environment(*, db: str | Path | None) -> dict[str, str]:
    """What the sessions' environment adds for :func:`dashboard_command`: a URL ``db``."""
    return {DB_ENV: str(db)} if db is not None and is_url(str(db)) else {}


class DashboardServer(Server):
    """textual-serve's server, refusing websockets opened by pages of other origins."""

    def __init__(self, command: str, host: str, port: int) -> None:
        super().__init__(command, host=host, port=port, title="jobrunner dashboard")
        self.origins = {self.public_url, f"http://localhost:{port}", f"http://127.0.0.1:{port}"}

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            raise web.HTTPForbidden(text=f"origin {origin} may not open the dashboard")
        return await super().handle_websocket(request)


def serve(command: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          environment: dict[str, str] | None = None) -> None:
    """Serve the dashboard until SIGINT or SIGTERM; each session's process inherits this
    one's environment, with ``environment`` added."""
    os.environ.update(environment or {})
    DashboardServer(command, host, port).serve()
