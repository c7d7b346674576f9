"""Logs: the tail of stored job and worker log records, filtered, following."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Log, Static

from runner.readmodel.dashboard import LogLine, tail_logs
from runner.store.db import Database, short_id
from tui import format as fmt
from tui.screens.base import DataScreen

LEVELS = (0, logging.INFO, logging.WARNING, logging.ERROR)
MAX_LINES = 5000


@dataclass(frozen=True)
class LogsRequest:
    generation: int
    after_id: int
    level: int
    text: str | None


def log_line(line: LogLine) -> str:
    """One record as plain text."""
    where = short_id(line.job_id) if line.job_id else (line.worker or "worker")
    return (f"{fmt.full_stamp(line.created_at)} {logging.getLevelName(line.level):<7} "
            f"{where:<12} {line.logger}: {line.message}")


class LogsScreen(DataScreen):
    """Tail of ``runner_log``: ``f`` follows, ``l`` sets the level, ``/`` filters text."""

    TITLE = "Logs"
    MODE = "logs"
    BINDINGS = [
        Binding("f", "follow", "Follow"),
        Binding("l", "level", "Level"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear", "Clear", show=False),
    ]
    HELP = [("up / down, pageup / pagedown, home / end", "scroll"),
            ("f", "follow new lines, or hold the view"), ("l", "cycle the lowest level shown"),
            ("/", "text filter"), ("esc", "clear the filter")]

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0
        self.after_id = 0
        self.level = 0
        self.text: str | None = None
        self.follow = True

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="logs-line")
        yield Input(placeholder="text to look for (enter applies, esc cancels)", id="log-filter")
        yield Log(max_lines=MAX_LINES, id="log", auto_scroll=True)

    def on_mount(self) -> None:
        self._describe()

    def _describe(self, note: str = "") -> None:
        level = logging.getLevelName(self.level) if self.level else "all"
        self.query_one("#logs-line", Static).update(
            f"level [b]{level}[/]  filter [b]{fmt.safe(self.text or '-')}[/]  "
            f"{'following' if self.follow else '[yellow]held (f follows)[/]'}{note}")

    def poll_request(self) -> LogsRequest | None:
        if not self.follow and self.after_id:
            return None
        return LogsRequest(self.generation, self.after_id, self.level, self.text)

    def fetch(self, db: Database, request: LogsRequest | None, now: float) -> Any:
        if request is None:
            return None
        return request, tail_logs(db, after_id=request.after_id, min_level=request.level,
                                  text=request.text, limit=MAX_LINES if not request.after_id
                                  else 2000)

    def apply(self, data: Any) -> None:
        if data is None:
            return
        request, lines = data
        if request.generation != self.generation or request.after_id != self.after_id:
            return
        if lines:
            self.query_one(Log).write_lines([log_line(line) for line in lines])
            self.after_id = lines[-1].id
        elif not self.after_id:
            self._describe("  (no stored log lines)")

    def _restart(self) -> None:
        self.generation += 1
        self.after_id = 0
        self.query_one(Log).clear()
        self._describe()
        self.dashboard.poll_now()

    def action_follow(self) -> None:
        self.follow = not self.follow
        self.query_one(Log).auto_scroll = self.follow
        self._describe()
        if self.follow:
            self.dashboard.poll_now()

    def action_level(self) -> None:
        self.level = LEVELS[(LEVELS.index(self.level) + 1) % len(LEVELS)]
        self._restart()

    def action_filter(self) -> None:
        box = self.query_one("#log-filter", Input)
        box.value = self.text or ""
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one(Log).focus()
        self.text = event.value.strip() or None
        self._restart()

    def action_clear(self) -> None:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.display = False
            self.query_one(Log).focus()
        elif self.text:
            self.text = None
            self._restart()
