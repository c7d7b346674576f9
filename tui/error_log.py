"""Where the dashboard keeps tracebacks of its own errors (bugs, not database problems).

The status line names the file; each distinct error is written once, however
many refreshes hit it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import traceback
from pathlib import Path

logger = logging.getLogger(__name__)


def default_error_log() -> Path:
    """``$XDG_STATE_HOME/jobrunner/dashboard-errors.log`` (``~/.local/state`` by default)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "jobrunner" / "dashboard-errors.log"


class ErrorLog:
    """Appends tracebacks to :attr:`path`, once per distinct error text."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_error_log()
        self._last: str | None = None

    def record(self, exc: BaseException, text: str, where: str) -> None:
        """Append ``exc``'s traceback unless ``text`` was the last one written."""
        if text == self._last:
            return
        self._last = text
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as out:
                out.write(f"--- {dt.datetime.now().isoformat(timespec='seconds')} {where}\n")
                out.write("".join(traceback.format_exception(exc)))
        except OSError:
            logger.exception("cannot write the error log %s", self.path)
