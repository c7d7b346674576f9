"""``python -m tui --web``: a real server process, loaded by headless Chromium."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.tui.browser import Browser, find_chromium
from tui.__main__ import parse_args
from tui.web import dashboard_command

# Run first in the page: keep what the terminal's websocket receives (ANSI stripped),
# and report it once the page has put bytes on its terminal.
CAPTURE = r"""
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  let text = "";
  window.WebSocket = function (url, protocols) {
    const socket = new Native(url, protocols);
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") {
        text += decoder.decode(new Uint8Array(event.data), {stream: true});
      }
    });
    return socket;
  };
  window.WebSocket.prototype = Native.prototype;
  window.__seen = () => {
    const shown = document.body && document.body.classList.contains("-first-byte")
      && document.querySelector(".xterm-screen");
    return shown ? text.replace(/\x1b\[[0-9;?<>=]*[ -\/]*[@-~]/g, "") : "";
  };
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited with {process.returncode}: "
                                 f"{process.stderr.read() if process.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.read().decode()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def web_server(seeded, tmp_path):
    port = free_port()
    log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "--web", "--db", str(seeded.path), "--port", str(port),
         "--refresh", "1"], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120"})
    try:
        yield port, process, log
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_browser_shows_the_queues(web_server, tmp_path):
    find_chromium()
    port, process, log = web_server
    page = wait_http(f"http://127.0.0.1:{port}/", process)
    assert "textual-terminal" in page and f"ws://127.0.0.1:{port}/ws" in page
    browser = Browser(tmp_path / "profile")
    try:
        seen = asyncio.run(browser.page_text(
            f"http://127.0.0.1:{port}/", CAPTURE,
            ["Overview", "Queues", "default", "mail", "read-only"]))
    finally:
        browser.close()
    assert "waiting" in seen
    process.terminate()
    assert process.wait(15) == 0  # SIGTERM stops the server cleanly


def test_server_listens_on_loopback_only_by_default(web_server):
    port, process, _ = web_server
    wait_http(f"http://127.0.0.1:{port}/", process)
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), port)
                 if info[0] == socket.AF_INET} - {"127.0.0.1", "127.0.1.1"}
    for address in addresses:
        with socket.socket() as s, pytest.raises(OSError):
            s.settimeout(2)
            s.connect((address, port))


def test_a_page_of_another_origin_cannot_open_the_dashboard(web_server):
    port, process, _ = web_server
    wait_http(f"http://127.0.0.1:{port}/", process)
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/ws", headers={
            "Origin": "http://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    refused.value.close()
    assert refused.value.code == 403


def test_web_sessions_are_read_only_unless_actions_are_enabled(tmp_path):
    read_only = dashboard_command(db=tmp_path / "j.db", settings=None, refresh=None,
                                  actions=False)
    assert read_only.endswith("--read-only") and str(tmp_path / "j.db") in read_only
    assert "--read-only" not in dashboard_command(db=tmp_path / "j.db", settings=None,
                                                  refresh=2, actions=True)
    args = parse_args(["--web"])
    assert (args.host, args.port, args.actions) == (None, None, False)


@pytest.mark.parametrize("argv, problem", [
    (["--port", "9000"], "only apply with --web"),
    (["--web", "--actions", "--read-only"], "contradict"),
    (["--web", "--port", "70000"], "between 1 and 65535"),
])
def test_bad_web_options_are_refused(argv, problem, capsys):
    with pytest.raises(SystemExit) as stopped:
        parse_args(argv)
    assert stopped.value.code == 2 and problem in capsys.readouterr().err


def test_a_session_gets_the_database_url_without_its_password_on_the_command_line(tmp_path):
    # (ps shows every process's command line to every user of the host)
    import re

    import aiohttp
    import psutil

    from runner.store.factory import open_store
    from tests.postgres_support import fresh_schema
    from tests.tui.test_postgres_dashboard import _with_password

    with fresh_schema() as url:
        # Given a web dashboard of a PostgreSQL database whose URL holds a password
        secret_url = _with_password(url)
        open_store(secret_url).close()
        port = free_port()
        log = open(tmp_path / "server.log", "w+")  # noqa: SIM115 - closed below
        server = subprocess.Popen(
            [sys.executable, "-m", "tui", "--web", "--db", secret_url, "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        try:
            wait_http(f"http://127.0.0.1:{port}/", server)

            # When a browser session starts its dashboard process
            async def session() -> tuple[list[list[str]], str]:
                seen = ""
                async with aiohttp.ClientSession() as client, client.ws_connect(
                        f"ws://127.0.0.1:{port}/ws?width=120&height=40") as socket:
                    deadline = time.monotonic() + 60
                    while "Overview" not in seen and time.monotonic() < deadline:
                        message = await socket.receive(timeout=60)
                        if message.type == aiohttp.WSMsgType.BINARY:
                            seen += re.sub(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]", "",
                                           message.data.decode(errors="replace"))
                    children = [c.cmdline() for c in
                                psutil.Process(server.pid).children(recursive=True)]
                return children, seen

            children, seen = asyncio.run(session())
        finally:
            server.terminate()
            server.wait(15)
            log.close()
    # Then it shows the database, and no command line of it holds the password
    assert "Overview" in seen, (tmp_path / "server.log").read_text()
    assert any("tui" in " ".join(argv) for argv in children), children
    assert not any("pg-url-password" in word for argv in children for word in argv), children
