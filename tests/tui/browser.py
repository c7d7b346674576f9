"""Headless Chromium driven over the DevTools protocol (aiohttp's websocket client).

Enough to load a page and read what it received and shows; the browser may reach
nothing but loopback (every other host name fails to resolve).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """The Chromium binary; a missing one skips the test, or fails it under CI."""
    for name in NAMES:
        if found := shutil.which(name):
            return found
    message = ("no Chromium on PATH (apt-get install -y chromium); "
               "the browser test of `python -m tui --web` needs it")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Browser:
    """One headless Chromium with a user profile in ``profile``."""

    def __init__(self, profile: Path) -> None:
        self.profile = profile
        self.process = subprocess.Popen(
            [find_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0", f"--user-data-dir={profile}",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
             "--window-size=1400,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._ids = itertools.count(1)

    def debug_port(self, timeout: float = 60.0) -> int:
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker.exists() and (lines := marker.read_text().split()):
                return int(lines[0])
            if self.process.poll() is not None:
                raise AssertionError(f"chromium exited with {self.process.returncode}")
            time.sleep(0.05)
        raise AssertionError("chromium did not open its debugging port")

    async def page_text(self, url: str, script: str, want: list[str], *,
                        timeout: float = 60.0) -> str:
        """Load ``url`` with ``script`` run first in the page; poll ``script``'s
        ``window.__seen()`` until it holds every string of ``want``; return it."""
        port = self.debug_port()
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as reply:
                targets = await reply.json()
            page = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                await self._call(ws, "Page.enable")
                await self._call(ws, "Page.addScriptToEvaluateOnNewDocument", source=script)
                await self._call(ws, "Page.navigate", url=url)
                deadline = time.monotonic() + timeout
                seen = ""
                while time.monotonic() < deadline:
                    found = await self._call(ws, "Runtime.evaluate",
                                             expression="window.__seen ? window.__seen() : ''",
                                             returnByValue=True)
                    seen = found.get("result", {}).get("value") or ""
                    if all(w in seen for w in want):
                        return seen
                    await asyncio.sleep(0.2)
                raise AssertionError(f"the page never showed {want}; it showed {seen[-2000:]!r}")

    async def _call(self, ws: aiohttp.ClientWebSocketResponse, method: str,
                    **params: Any) -> dict:
        ident = next(self._ids)
        await ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await ws.receive()).data)
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
