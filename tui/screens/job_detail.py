"""Job detail: arguments, progress, the timeline of attempts, tracebacks, log lines."""

from __future__ import annotations

import dataclasses
import json
import logging

from rich.markup import escape
from textual.binding import Binding
from textual.containers import VerticalScroll

from runner import control as actions
from runner.errors import JobNotFound
from runner.readmodel.dashboard import JobDetail, job_detail
from runner.store.backend import Store
from runner.store.rows import short_id
from runner.store.states import JobState
from tui import format as fmt
from tui.screens.base import cancel_from_dashboard
from tui.screens.detail import DetailScreen

TRACEBACK = "Traceback (most recent call last)"
#: The state of an executing job whose worker is gone, as the Jobs list and the strip say.
STALLED = "[b red]stalled[/] (executing; its worker is gone)"


def detail_text(detail: JobDetail, now: float) -> str:
    """The whole detail as markup (pure, so it can be tested without a terminal)."""
    job = detail.job
    lines = [
        f"[b]{escape(job.task)}[/]  {job.id}",
        f"state {STALLED if detail.stalled else f'[b]{job.state}[/]'}  "
        f"queue {escape(job.queue)}  priority {job.priority}  "
        f"attempt {job.attempt_text()}  "
        f"crashes {job.crashes}",
    ]
    if job.state == JobState.RETRYING:
        when = (f"next attempt in {fmt.age(job.run_at - now)}" if job.run_at > now else
                f"next attempt due {fmt.relative(job.run_at, now)}, waiting for a worker")
        lines.append(f"[yellow]{when}[/] (at {fmt.full_stamp(job.run_at)}, attempt "
                     f"{job.attempt_text(ahead=1)})")
    elif job.state == JobState.SCHEDULED:
        lines.append(f"due {fmt.relative(job.run_at, now)} (at {fmt.full_stamp(job.run_at)})")
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
    if job.state == JobState.COMPLETED:
        lines += ["", "[b]Result[/]", escape(detail.result.text) if detail.result is not None
                  else "[dim](none stored: the task returned None, or its caller took it)[/]"]
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
    shown = [e.traceback.strip() for e in tracebacks] or [(job.last_error or "").strip()]
    for log in detail.logs:
        level = logging.getLevelName(log.level)
        lines.append(f"  {fmt.full_stamp(log.created_at)} {level:<7} "
                     f"{escape(without_shown_traceback(log.message, shown))}")
    if not detail.logs:
        lines.append("  (no log lines stored for this job)")
    return "\n".join(lines)


def without_shown_traceback(message: str, shown: list[str]) -> str:
    """A log message minus a traceback the Traceback section already shows."""
    start = message.find(TRACEBACK)
    if start < 0:
        return message
    trace = message[start:].strip()
    if not any(trace and (trace in s or s in trace or _ends_alike(trace, s)) for s in shown if s):
        return message
    return message[:start].rstrip() + "  (traceback above)"


def _ends_alike(logged: str, shown: str) -> bool:
    """True when ``shown`` is ``logged`` as the job keeps it: the worker logs every frame,
    the job keeps each exception's frames from the task's first one on, so each traceback
    of the shown chain ends as the logged one's does."""
    logged_parts, shown_parts = logged.split(TRACEBACK), shown.split(TRACEBACK)
    if len(logged_parts) != len(shown_parts):
        return False
    for whole, kept in zip(logged_parts, shown_parts, strict=True):
        # Each part starts with the rest of its header line (":"), then frames.
        whole_lines, kept_lines = whole.strip().splitlines()[1:], kept.strip().splitlines()[1:]
        if len(kept_lines) > len(whole_lines) or \
                whole_lines[len(whole_lines) - len(kept_lines):] != kept_lines:
            return False
    return True


def detail_json(detail: JobDetail) -> str:
    """The job, its failed attempts and its result as JSON (what ``Y`` copies)."""
    job = dataclasses.asdict(detail.job)
    try:
        job["args"] = json.loads(job["args"]) if job["args"] else None
    except ValueError:
        pass
    result: object = None
    if detail.result is not None:
        result = detail.result.value if detail.result.decoded else detail.result.text
    return json.dumps({"job": job, "attempts": [dataclasses.asdict(e) for e in detail.errors],
                       "result": result}, indent=2, default=repr)


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
    if job.started_at and job.state in (JobState.EXECUTING, JobState.COMPLETED):
        events.append((job.started_at, f"attempt {job.attempt} started"))
    if job.finished_at:
        events.append((job.finished_at, f"{job.state} (ran {fmt.duration(job.duration)})"))
    lines = [f"  {fmt.full_stamp(at)}  {text}" for at, text in sorted(events,
                                                                         key=lambda e: e[0])]
    if job.state == JobState.EXECUTING and job.started_at:
        if detail.stalled:
            lines.append(f"  started {fmt.age(now - job.started_at)} ago on "
                         f"{escape(job.lease_owner or '-')}, which is gone: it runs again "
                         "once a worker requeues it")
        else:
            lines.append(f"  running for {fmt.age(now - job.started_at)} on "
                         f"{escape(job.lease_owner or '-')}")
    return lines


class JobDetailScreen(DetailScreen):
    """One job, refreshed live; ``esc`` goes back."""

    TITLE = "Job"
    MODE = ""
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "retry", "Retry"),
        Binding("d", "discard", "Discard"),
        Binding("c", "cancel", "Cancel"),
        Binding("y", "copy", "Copy id"),
        Binding("Y", "copy_json", "Copy JSON"),
        Binding("l", "logs", "Logs"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
        Binding("g", "home", "Top", show=False),
        Binding("G", "end", "Bottom", show=False),
    ]
    HELP = [("esc", "back"), ("r / d / c", "retry / discard / cancel"), ("y", "copy the id"),
            ("Y", "copy the job, its attempts and result as JSON"),
            ("l", "this job's lines on the Logs screen"),
            ("j / k, g / G", "scroll, top / bottom")]

    NOT_FOUND = JobNotFound
    SCROLL_ID = "detail-scroll"
    TEXT_ID = "detail"

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id
        self.detail: JobDetail | None = None

    def read_detail(self, store: Store, record_id: str) -> JobDetail:
        limits = self.dashboard.limits
        return job_detail(store, record_id, stale_after=limits.heartbeat_max_age,
                          node=limits.node_name)

    def detail_markup(self, detail: JobDetail, now: float) -> str:
        return detail_text(detail, now)

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
        self.act(f"cancelled {short}", cancel_from_dashboard, self.job_id,
                 self.dashboard.limits, refused=f"cannot cancel {short}")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.job_id)
        self.notify(f"copied {self.job_id}")

    def action_copy_json(self) -> None:
        if self.detail is None:
            self.notify("the job is not loaded yet", severity="warning")
            return
        self.app.copy_to_clipboard(detail_json(self.detail))
        self.notify(f"copied {short_id(self.job_id)} as JSON")

    def action_logs(self) -> None:
        self.app.run_worker(self._logs(), exclusive=True, group="navigate")

    async def _logs(self) -> None:
        job_id = self.job_id
        self.app.pop_screen()
        await self.dashboard.switch_mode("logs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_job"):
            screen.set_job(job_id)
