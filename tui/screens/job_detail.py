"""Job detail: arguments, progress, the timeline of attempts, tracebacks, log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from rich.markup import escape
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.errors import JobNotFound
from runner.readmodel.dashboard import JobDetail, job_detail
from runner.store.db import Database, short_id
from tui import format as fmt
from tui.screens.base import DataScreen


def detail_text(detail: JobDetail, now: float) -> str:
    """The whole detail as markup (pure, so it can be tested without a terminal)."""
    job = detail.job
    lines = [
        f"[b]{escape(job.task)}[/]  {job.id}",
        f"state [b]{job.state}[/]  queue {escape(job.queue)}  priority {job.priority}  "
        f"attempt {job.attempt}/{job.max_attempts}  crashes {job.crashes}",
    ]
    if job.reason:
        lines.append(f"reason: {escape(job.reason)}")
    if job.schedule:
        lines.append(f"schedule: {escape(job.schedule)}")
    if job.event_id:
        lines.append(f"event: {job.event_id}")
    lines += ["", "[b]Arguments[/]", escape(job.args or "-")]
    if job.progress_done is not None:
        lines += ["", "[b]Progress[/]",
                  f"{fmt.progress_bar(job.progress_done, job.progress_total, 30)}  "
                  f"{job.progress_done:g}/{job.progress_total or 0:g}  "
                  f"{escape(job.progress_message or '')}"]
    lines += ["", "[b]Timeline[/]", *timeline(detail, now)]
    tracebacks = [e for e in detail.errors if e.traceback]
    if tracebacks or job.last_error:
        lines += ["", "[b]Traceback[/]"]
        if tracebacks:
            for err in tracebacks:
                lines += [f"[dim]attempt {err.attempt}[/]", escape(err.traceback.rstrip())]
        else:
            lines.append(escape(job.last_error.rstrip()))
    lines += ["", f"[b]Log[/] ({len(detail.logs)} lines)"]
    for log in detail.logs:
        level = logging.getLevelName(log.level)
        lines.append(f"  {fmt.full_stamp(log.created_at)} {level:<7} {escape(log.message)}")
    if not detail.logs:
        lines.append("  (no log lines stored for this job)")
    return "\n".join(lines)


def timeline(detail: JobDetail, now: float) -> list[str]:
    """Enqueue, due time, failed attempts, start and finish, oldest first."""
    job = detail.job
    events: list[tuple[float, str]] = [(job.created_at, "enqueued")]
    if job.run_at and job.run_at > job.created_at + 1:
        events.append((job.run_at, "due"))
    for err in detail.errors:
        began = f"started {fmt.full_stamp(err.started_at)}, " if err.started_at else ""
        events.append((err.failed_at, f"attempt {err.attempt} {err.kind}: "
                       f"{escape(err.error_type or '')} {escape(fmt.one_line(err.message, 100))} "
                       f"({began}worker {escape(err.worker or '-')})"))
    if job.started_at and job.state in ("executing", "completed"):
        events.append((job.started_at, f"attempt {job.attempt} started"))
    if job.finished_at:
        events.append((job.finished_at, f"{job.state} (ran {fmt.duration(job.duration)})"))
    lines = [f"  {fmt.full_stamp(at)}  {text}" for at, text in sorted(events,
                                                                         key=lambda e: e[0])]
    if job.state == "executing" and job.started_at:
        lines.append(f"  running for {fmt.age(now - job.started_at)} on "
                     f"{escape(job.lease_owner or '-')}")
    return lines


class JobDetailScreen(DataScreen):
    """One job, refreshed live; ``esc`` goes back."""

    TITLE = "Job"
    MODE = ""
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "retry", "Retry"),
        Binding("d", "discard", "Discard"),
        Binding("c", "cancel", "Cancel"),
        Binding("y", "copy", "Copy id"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("g", "home", "Top", show=False),
        Binding("G", "end", "Bottom", show=False),
    ]
    HELP = [("esc", "back"), ("r / d / c", "retry / discard / cancel"), ("y", "copy the id"),
            ("j / k, g / G", "scroll, top / bottom")]

    def __init__(self, job_id: str) -> None:
        super().__init__()
        self.job_id = job_id

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id="detail-scroll"):
            yield Static("loading…", id="detail")

    def on_mount(self) -> None:
        self.dashboard.poll_now()

    def poll_request(self) -> str:
        return self.job_id

    def fetch(self, db: Database, request: Any, now: float) -> Any:
        try:
            return job_detail(db, request), now
        except JobNotFound as exc:
            return str(exc), now

    def apply(self, data: Any) -> None:
        if data is None:
            return
        detail, now = data
        text = detail if isinstance(detail, str) else detail_text(detail, now)
        self.query_one("#detail", Static).update(text)

    def action_back(self) -> None:
        self.app.pop_screen()
        self.dashboard.poll_now()

    def action_scroll(self, step: int) -> None:
        self.query_one("#detail-scroll", VerticalScroll).scroll_relative(y=step * 3,
                                                                         animate=False)

    def action_home(self) -> None:
        self.query_one("#detail-scroll", VerticalScroll).scroll_home(animate=False)

    def action_end(self) -> None:
        self.query_one("#detail-scroll", VerticalScroll).scroll_end(animate=False)

    def action_retry(self) -> None:
        short = short_id(self.job_id)
        self.act(f"retried {short}", actions.retry_job, self.job_id,
                 refused=f"cannot retry {short}")

    def action_discard(self) -> None:
        short = short_id(self.job_id)
        self.confirm(f"Discard job {short}? It will not run again.",
                     lambda: self.act(f"discarded {short}", actions.discard_job, self.job_id,
                                      refused=f"cannot discard {short}"))

    def action_cancel(self) -> None:
        short = short_id(self.job_id)
        self.act(f"cancelled {short}", actions.cancel_job, self.job_id,
                 refused=f"cannot cancel {short}")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.job_id)
        self.notify(f"copied {self.job_id}")
