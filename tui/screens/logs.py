"""Logs: the tail of stored job and worker log records, filtered, following."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.highlighter import Highlighter
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Log, Static

from runner.readmodel.dashboard import LogLine, resolve_job_id, tail_logs
from runner.store.backend import Store
from runner.store.rows import short_id
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
    job: str | None = None


def log_line(line: LogLine) -> str:
    """One record as plain text."""
    where = short_id(line.job_id) if line.job_id else (line.worker or "worker")
    return (f"{fmt.full_stamp(line.created_at)} {logging.getLevelName(line.level):<7} "
            f"{where:<12} {line.logger}: {line.message}")


LEVEL_STYLES = {"DEBUG": Style(dim=True), "INFO": Style(color="green"),
                "WARNING": Style(color="yellow", bold=True), "ERROR": Style(color="red", bold=True),
                "CRITICAL": Style(color="white", bgcolor="red", bold=True)}
_LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL)\b")


class LevelHighlighter(Highlighter):
    """Colours a log line's level; errors colour the whole line."""

    def highlight(self, text: Text) -> None:
        found = _LEVEL.match(text.plain)
        if found is None:
            return
        name = found.group(1)
        text.stylize(LEVEL_STYLES[name], found.start(1), found.end(1))
        if name in ("ERROR", "CRITICAL"):
            text.stylize(Style(color="red"), found.end(1))


def parse_log_filter(text: str) -> tuple[str | None, str | None]:
    """``job:ID words`` -> (job, words): ``job:`` takes a whole id or a unique part of one."""
    job, words = None, []
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key == "job" and value:
            job = value
        else:
            words.append(word)
    return job, " ".join(words) or None


class TailLog(Log):
    """A log that stays at its last line while following, also when it changes size."""

    def on_resize(self) -> None:
        # A banner or filter box appearing shrinks the log after the lines were written.
        if self.auto_scroll:
            self.scroll_end(animate=False)


class LogsScreen(DataScreen):
    """Tail of ``runner_log``: ``f`` follows, ``l`` sets the level, ``/`` filters text."""

    TITLE = "Logs"
    MODE = "logs"
    BINDINGS = [
        Binding("f", "follow", "Follow"),
        Binding("l", "level", "Level"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear", "Clear", show=False),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("g", "top", "Top", show=False),
        Binding("G", "bottom", "Bottom", show=False),
    ]
    HELP = [("f", "follow new lines, or hold the view"), ("l", "cycle the lowest level shown"),
            ("/", "filter: job:ID (a job's own lines) and text"), ("esc", "clear the filter"),
            ("j / k", "scroll a line (k holds the view)"),
            ("g / G", "top (holds the view) / bottom (follows)")]

    def __init__(self) -> None:
        super().__init__()
        self.generation = 0
        self.after_id = 0
        self.level = 0
        self.text: str | None = None
        self.job: str | None = None
        self.follow = True
        self._job_id: tuple[int, str] | None = None
        """The filter's job as found for a generation: a short id is found by a scan
        of every job id, so once per filter, not at every refresh."""

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="logs-line")
        yield Input(placeholder="text to look for (enter applies, esc cancels)", id="log-filter")
        log = TailLog(max_lines=MAX_LINES, id="log", auto_scroll=True, highlight=True)
        log.highlighter = LevelHighlighter()
        yield log

    def on_mount(self) -> None:
        self._describe()

    def _describe(self, note: str = "") -> None:
        level = logging.getLevelName(self.level) if self.level else "all"
        job = f"job [b]{fmt.safe(self.job)}[/]  " if self.job else ""
        self.query_one("#logs-line", Static).update(fmt.markup(
            f"level [b]{level}[/]  {job}filter [b]{fmt.safe(self.text or '-')}[/]  "
            f"{'following' if self.follow else '[yellow]held (f follows)[/]'}{note}"))

    def poll_request(self) -> LogsRequest | None:
        if not self.follow and self.after_id:
            return None
        return LogsRequest(self.generation, self.after_id, self.level, self.text, self.job)

    def fetch(self, store: Store, request: LogsRequest | None, now: float) -> Any:
        if request is None:
            return None
        job = None
        if request.job:
            found = self._job_id
            if found is not None and found[0] == request.generation:
                job = found[1]
            else:
                job = resolve_job_id(store, request.job)
                self._job_id = (request.generation, job)
        return request, tail_logs(store, after_id=request.after_id, min_level=request.level,
                                  text=request.text, job_id=job,
                                  limit=MAX_LINES if not request.after_id else 2000)

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
        box.value = " ".join(([f"job:{self.job}"] if self.job else []) + [self.text or ""]).strip()
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.query_one(Log).focus()
        self.job, self.text = parse_log_filter(event.value)
        self._restart()

    def set_job(self, job_id: str) -> None:
        """Show only the lines of job ``job_id`` (the Job detail's ``l``)."""
        self.job, self.text = job_id, None
        self.follow = True
        self.query_one(Log).auto_scroll = True
        self._restart()

    def action_scroll(self, step: int) -> None:
        if step < 0:
            self._hold()
        self.query_one(Log).scroll_relative(y=step, animate=False)

    def action_top(self) -> None:
        self._hold()
        self.query_one(Log).scroll_home(animate=False)

    def action_bottom(self) -> None:
        if not self.follow:
            self.action_follow()
        self.query_one(Log).scroll_end(animate=False)

    def _hold(self) -> None:
        if self.follow:
            self.action_follow()

    def action_clear(self) -> None:
        box = self.query_one("#log-filter", Input)
        if box.display:
            box.display = False
            self.query_one(Log).focus()
        elif self.text or self.job:
            self.text = self.job = None
            self._restart()
