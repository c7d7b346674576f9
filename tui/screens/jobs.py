"""Jobs: one table over every job, filtered and paged in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Static

from runner import control as actions
from runner.readmodel.dashboard import JOB_STATES, count_jobs_capped, job_page
from runner.store.db import Database, short_id
from runner.store.models import JobRow
from runner.store.queries import JobFilter, job_ids
from tui import format as fmt
from tui.filters import describe, parse_filter, with_state
from tui.screens.base import DataScreen, TabCounts
from tui.widgets.keyed_table import KeyedTable

PAGE = 100
COUNT_CAP = 10_000
TEXT_RECOUNT = 15.0
COLUMNS = [("id", "id"), ("task", "task"), ("queue", "queue"), ("state", "state"),
           ("attempt", "try"), ("enqueued", "enqueued"), ("started", "started"),
           ("duration", "duration"), ("progress", "progress"), ("error", "error")]
STATE_STYLE = {"dead": "red", "retrying": "yellow", "executing": "cyan", "completed": "green",
               "cancelled": "dim"}


@dataclass(frozen=True)
class JobsRequest:
    filters: JobFilter
    page: int


@dataclass(frozen=True)
class JobsData:
    request: JobsRequest
    jobs: list[JobRow]
    total: int
    capped: bool
    now: float


def job_cells(job: JobRow, now: float) -> tuple:
    """The table cells of one job."""
    style = STATE_STYLE.get(job.state)
    state = f"[{style}]{job.state}[/]" if style else job.state
    running = job.state == "executing" and job.started_at is not None
    took = now - job.started_at if running and job.started_at else job.duration
    return (short_id(job.id), fmt.safe(job.task), fmt.safe(job.queue), state,
            f"{job.attempt}/{job.max_attempts}",
            fmt.stamp(job.created_at, now), fmt.stamp(job.started_at, now), fmt.duration(took),
            fmt.progress_bar(job.progress_done, job.progress_total),
            fmt.safe(fmt.one_line(job.error_message or job.reason
                                  if job.state != "completed" else "", 60)))


class JobsScreen(DataScreen):
    """Every job, newest first; ``/`` filters, ``s`` picks a state, ``[``/``]`` page."""

    TITLE = "Jobs"
    MODE = "jobs"
    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_state", "State"),
        Binding("right_square_bracket", "page(1)", "Next page", show=False),
        Binding("left_square_bracket", "page(-1)", "Prev page", show=False),
        Binding("escape", "clear", "Clear", show=False),
        Binding("r", "retry", "Retry"),
        Binding("d", "discard", "Discard"),
        Binding("c", "cancel", "Cancel", show=False),
        Binding("R", "retry_all", "Retry all", show=False),
        Binding("D", "discard_all", "Discard all", show=False),
        Binding("y", "copy", "Copy id", show=False),
    ]
    HELP = [("enter", "job detail"), ("/", "filter: state:dead queue:q task:t event:id text"),
            ("s", "cycle state"), ("[ / ]", "previous / next page"), ("esc", "clear filter"),
            ("r / d / c", "retry / discard / cancel the job"),
            ("R / D", "retry / discard every job of the filter"), ("y", "copy the job id")]

    def __init__(self) -> None:
        super().__init__()
        self.filters = JobFilter()
        self.page = 0
        self.total = 0
        self._counted: tuple[JobFilter, float, int, bool] | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="filter-line")
        yield Input(placeholder="state:dead queue:default task:name text  (enter applies, "
                                "esc cancels)", id="filter")
        yield KeyedTable(COLUMNS, id="jobs")

    def on_mount(self) -> None:
        self._describe()

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        s = counts.summary
        return fmt.count(s.waiting + s.running + s.scheduled + s.retrying)

    # -- data ------------------------------------------------------------------

    def poll_request(self) -> JobsRequest:
        return JobsRequest(self.filters, self.page)

    def fetch(self, db: Database, request: JobsRequest, now: float) -> JobsData:
        jobs = job_page(db, request.filters, limit=PAGE, offset=request.page * PAGE)
        # A text search scans every row; recount it only now and then, not every second.
        kept = self._counted
        if (request.filters.text and kept is not None and kept[0] == request.filters
                and now - kept[1] < TEXT_RECOUNT):
            total, capped = kept[2], kept[3]
        else:
            total, capped = count_jobs_capped(db, request.filters, cap=COUNT_CAP)
            self._counted = (request.filters, now, total, capped)
        return JobsData(request, jobs, total, capped, now)

    def apply(self, data: JobsData | None) -> None:
        if data is None or data.request != self.poll_request():
            return
        self.total = data.total
        self.query_one("#jobs", KeyedTable).sync(
            [(job.id, job_cells(job, data.now)) for job in data.jobs])
        shown = f"{self.page * PAGE + 1}-{self.page * PAGE + len(data.jobs)}" if data.jobs else "0"
        more = "+" if data.capped else ""
        self._describe(f"  {shown} of {fmt.count(data.total)}{more}")

    def _describe(self, counts: str = "") -> None:
        text = describe(self.filters)
        self.query_one("#filter-line", Static).update(
            f"state [b]{self.filters.state or 'all'}[/]  filter [b]{text or '-'}[/]  "
            f"page {self.page + 1}{counts}")

    def set_filter(self, filters: JobFilter) -> None:
        """Show jobs matching ``filters`` from the first page."""
        self.filters = filters
        self.page = 0
        self._describe()
        self.dashboard.poll_now()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#jobs", KeyedTable)

    # -- keys ------------------------------------------------------------------

    def action_open(self) -> None:
        key = self.table.selected_key
        if key:
            from tui.screens.job_detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(key))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = describe(self.filters)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.display = False
        self.table.focus()
        self.set_filter(parse_filter(event.value, self.filters))

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.table.focus()
            return
        if self.filters != JobFilter():
            self.set_filter(JobFilter())

    def action_cycle_state(self) -> None:
        states = list(JOB_STATES)
        current = states.index(self.filters.state) if self.filters.state in states else 0
        self.set_filter(with_state(self.filters, states[(current + 1) % len(states)]))

    def action_page(self, step: int) -> None:
        last = max(0, (self.total - 1) // PAGE)
        page = min(max(0, self.page + step), last)
        if page != self.page:
            self.page = page
            self.table.move_cursor(row=0)
            self._describe()
            self.dashboard.poll_now()

    def action_retry(self) -> None:
        if key := self.table.selected_key:
            self.act(f"retried {short_id(key)}", actions.retry_job, key)

    def action_discard(self) -> None:
        if key := self.table.selected_key:
            self.confirm(f"Discard job {short_id(key)}? It will not run again.",
                         lambda: self.act(f"discarded {short_id(key)}", actions.discard_job, key))

    def action_cancel(self) -> None:
        if key := self.table.selected_key:
            self.act(f"cancelled {short_id(key)}", actions.cancel_job, key)

    def action_retry_all(self) -> None:
        self._bulk("Retry", actions.retry_jobs)

    def action_discard_all(self) -> None:
        self._bulk("Discard", actions.discard_jobs)

    def _bulk(self, verb: str, fn: Any) -> None:
        filters = self.filters
        what = describe(filters) or "no filter"
        self.confirm(
            f"{verb} every job matching state [b]{filters.state or 'all'}[/], {what}: "
            f"[b]{fmt.count(self.total)}[/] jobs{' or more' if self.total >= COUNT_CAP else ''}?"
            " Jobs in a state that does not allow it are left alone.",
            lambda: self.act(f"{verb.lower()} all", _bulk_action(fn), filters))

    def action_copy(self) -> None:
        if key := self.table.selected_key:
            self.app.copy_to_clipboard(key)
            self.notify(f"copied {key}")


def _bulk_action(fn: Any) -> Any:
    def run(db: Database, filters: JobFilter) -> str:
        return f"{fn(db, job_ids(db, filters))} jobs"
    return run
