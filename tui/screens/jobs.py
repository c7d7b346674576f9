"""Jobs: one table over every job, filtered and keyset-paged in SQL."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Input, Static
from textual.widgets.data_table import ColumnKey

from runner import control as actions
from runner.errors import InvalidFilter
from runner.readmodel.dashboard import (
    JOB_SORTS,
    JOB_STATES,
    SORT_WINDOW,
    PageKey,
    count_jobs_capped,
    job_page,
    live_worker_ids,
    page_key_at,
    resolve_filters,
)
from runner.store.backend import Store
from runner.store.rows import JobFilter, JobRow, short_id
from runner.store.states import JobState
from tui import format as fmt
from tui.filters import describe, describe_error, parse_filter, with_state
from tui.screens.base import DataScreen, TabCounts, cancel_from_dashboard
from tui.screens.bulk import ask_bulk
from tui.timejump import parse_time
from tui.widgets.keyed_table import KeyedTable, OpenableTable

PAGE = 100
COUNT_CAP = 10_000
TEXT_RECOUNT = 15.0
COLUMNS = [("id", "id"), ("task", "task"), ("queue", "queue"), ("state", "state"),
           ("attempt", "try"), ("enqueued", "enqueued"), ("started", "started"),
           ("duration", "duration"), ("progress", "progress"), ("error", "error")]
#: The most a task or queue name takes of a row (cut with an ellipsis): a long name must
#: not push the error column off the screen. The job's detail shows it whole.
NAME_WIDTH = 40
#: Below 120 cells: the columns that tell jobs apart and why they failed.
NARROW = [("id", 12), ("task", 16), ("state", 9), ("attempt", 5), ("error", None)]
#: The sort a click on a column header picks (a second click on ``enqueued`` reverses it).
HEADER_SORTS = {"enqueued": "newest", "duration": "duration", "attempt": "attempts"}
SORT_MARKS = {"enqueued": {"newest": " ▼", "oldest": " ▲"}, "duration": {"duration": " ▼"},
              "attempt": {"attempts": " ▼"}}
STATE_STYLE = {"dead": "red", "retrying": "yellow", "executing": "cyan", "completed": "green",
               "cancelled": "dim"}


@dataclass(frozen=True)
class JobsRequest:
    filters: JobFilter
    start: PageKey | None
    """Where the page starts (None: the first job in the sort order)."""
    sort: str = "newest"
    jump: float | None = None
    """Start at this time instead (the page key is found in the poll thread)."""


@dataclass(frozen=True)
class JobsData:
    request: JobsRequest
    jobs: list[JobRow]
    next_key: PageKey | None
    start: PageKey | None
    total: int
    capped: bool
    now: float
    live: frozenset[str] = frozenset()
    """Workers alive now: an executing job of any other worker is stalled."""


def job_cells(job: JobRow, now: float, live: frozenset[str] | None = None) -> tuple:
    """The table cells of one job (``live``: the live workers, to tell stalled jobs)."""
    style = STATE_STYLE.get(job.state)
    state = f"[{style}]{job.state}[/]" if style else job.state
    stalled = (job.state == JobState.EXECUTING and live is not None
               and job.lease_owner not in live)
    if stalled:
        state = "[red]stalled[/]"  # its worker is gone: nothing runs it until it is requeued
    took = job.listed_duration(now, stalled)
    return (short_id(job.id), fmt.safe(fmt.one_line(job.task, NAME_WIDTH)),
            fmt.safe(fmt.one_line(job.queue, NAME_WIDTH)), state,
            job.attempt_text(compact=True),
            fmt.relative(job.created_at, now, coarse=True),
            fmt.relative(job.started_at, now, coarse=True),
            fmt.duration(took),
            fmt.progress_bar(job.progress_done, job.progress_total),
            fmt.safe(fmt.one_line(job.listed_note, 60)))


class JobsScreen(DataScreen):
    """Every job, newest first; ``/`` filters, ``s`` picks a state, ``[``/``]`` page."""

    TITLE = "Jobs"
    MODE = "jobs"
    # Footer order: what acts on the job first; a narrow footer leaves out the spare keys
    # (tui.widgets.key_footer.SPARE), then cuts from the end.
    BINDINGS = [
        Binding("enter", "open", "Open", show=False),
        Binding("r", "retry", "Retry"),
        Binding("d", "discard", "Discard"),
        Binding("c", "cancel", "Cancel"),
        Binding("R", "retry_all", "Retry all"),
        Binding("D", "discard_all", "Discard all"),
        Binding("y", "copy", "Copy id"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "cycle_state", "State"),
        Binding("left_square_bracket", "page(-1)", "Prev", key_display="["),
        Binding("right_square_bracket", "page(1)", "Next", key_display="]"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("at", "jump", "Go to time", key_display="@"),
        Binding("escape", "clear", "Clear", show=False),
    ]
    HELP = [("j / k, g / G", "move, first / last row of the page"), ("enter", "job detail"),
            ("/", "filter: state:dead queue:q task:t event:id worker:id error:part text "
                  "(error: a part of the error's type or message, any case)"),
            ("s", "cycle state"), ("[ / ]", "previous / next page (to the very last job)"),
            ("o", "sort: newest, oldest, duration, attempts (or click a column header)"),
            ("@", "go to a time: 14:05, 2026-01-05 09:30, 2h (ago)"),
            ("esc", "clear the filter"),
            ("r / d / c", "retry / discard / cancel the job"),
            ("R", "retry the filter's failed jobs (or its state); type the count"),
            ("D", "discard the filter's jobs; type the count"), ("y", "copy the job id")]

    def __init__(self) -> None:
        super().__init__()
        self.filters = JobFilter()
        self.sort = "newest"
        self.starts: list[PageKey | None] = [None]
        """Start key of every page visited since the first; the last one is shown."""
        self.jump: float | None = None
        self.jumped_to: float | None = None
        self.next_key: PageKey | None = None
        self.total = 0
        self._counted: tuple[JobFilter, float, int, bool] | None = None
        self._resolved: tuple[JobFilter, JobFilter] | None = None
        """The filters typed and the same with short ids made whole (read once each)."""
        self._prompt = "filter"

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="filter-line")
        yield Input(placeholder="state:dead queue:default task:name error:part text  (enter "
                                "applies, esc cancels)", id="filter")
        yield OpenableTable(COLUMNS, narrow=NARROW, noun="job", id="jobs")

    def on_mount(self) -> None:
        self._mark_sort()
        self._describe()

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        s = counts.summary
        return f"{fmt.count(s.waiting + s.running + s.stalled + s.scheduled + s.retrying)} live"

    @property
    def page(self) -> int:
        """The page number shown, from 0 (counted from the start or the time jumped to)."""
        return len(self.starts) - 1

    # -- data ------------------------------------------------------------------

    def poll_request(self) -> JobsRequest:
        return JobsRequest(self.filters, self.starts[-1], self.sort, self.jump)

    def fetch(self, store: Store, request: JobsRequest, now: float) -> JobsData:
        start = request.start
        # The short ids shown elsewhere (an event's, a worker's host/pid) name whole ones.
        resolved = self._resolved
        if resolved is None or resolved[0] != request.filters:
            resolved = self._resolved = (request.filters,
                                         resolve_filters(store, request.filters))
        filters = resolved[1]
        if request.jump is not None:
            start = page_key_at(store, request.jump, filters,
                                oldest_first=request.sort == "oldest")
        page = job_page(store, filters, limit=PAGE, after=start, sort=request.sort,
                        now=now)
        # A text search scans every row; recount it only now and then, not every second.
        kept = self._counted
        if (request.filters.text and kept is not None and kept[0] == request.filters
                and now - kept[1] < TEXT_RECOUNT):
            total, capped = kept[2], kept[3]
        else:
            total, capped = count_jobs_capped(store, filters, cap=COUNT_CAP)
            self._counted = (request.filters, now, total, capped)
        limits = self.dashboard.limits
        live = live_worker_ids(store, now, limits.heartbeat_max_age, limits.node_name)
        return JobsData(request, page.jobs, page.next_key, start, total, capped, now, live)

    def after_write(self) -> None:
        self._counted = None  # the text search's count changed with the write

    def apply(self, data: JobsData | None) -> None:
        if data is None or data.request != self.poll_request():
            return
        if data.request.jump is not None:
            self.jump = None
            self.starts = [data.start]
        self.total = data.total
        self.next_key = data.next_key
        self.table.sync([(job.id, job_cells(job, data.now, data.live)) for job in data.jobs])
        first = self.page * PAGE + 1
        shown = f"{first:,}-{first + len(data.jobs) - 1:,}" if data.jobs else "none"
        more = "+" if data.capped else ""
        where = "" if self.jumped_to is None else f" from {fmt.stamp(self.jumped_to, data.now)}"
        last = "" if data.next_key is not None or not data.jobs else " (last page)"
        self._describe(f"  {shown}{where} of {fmt.count(data.total)}{more}{last}")

    def _describe(self, counts: str = "") -> None:
        text = describe(self.filters)
        error = describe_error(self.filters)
        if error:
            error = f"error [b]{fmt.safe(fmt.one_line(error, 60))}[/]  "
        ranked = (f" (of the newest {fmt.count(SORT_WINDOW)})"
                  if self.sort in ("duration", "attempts") else "")
        self.query_one("#filter-line", Static).update(fmt.markup(
            f"state [b]{self.filters.state or 'all'}[/]  {error}"
            f"filter [b]{fmt.safe(text) or '-'}[/]  "
            f"sort [b]{self.sort}[/]{ranked}  page {self.page + 1}{counts}"))

    def set_filter(self, filters: JobFilter) -> None:
        """Show jobs matching ``filters`` from the first page."""
        self.filters = filters
        self._restart()

    def _restart(self, jump: float | None = None) -> None:
        self.starts = [None]
        self.jump = self.jumped_to = jump
        self.next_key = None
        self.table.start_over()
        self._describe()
        self.dashboard.poll_now()

    @property
    def table(self) -> KeyedTable:
        return self.query_one("#jobs", KeyedTable)

    # -- keys ------------------------------------------------------------------

    def action_open(self) -> None:
        key = self.table.target_key()
        if key:
            from tui.screens.job_detail import JobDetailScreen

            self.app.push_screen(JobDetailScreen(key))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def _ask(self, prompt: str, value: str, placeholder: str) -> None:
        self._prompt = prompt
        box = self.query_one("#filter", Input)
        box.placeholder = placeholder
        box.value = value
        box.display = True
        box.focus()

    def action_filter(self) -> None:
        self._ask("filter", describe(self.filters),
                  "state:dead queue:default task:name error:part text  (enter applies, "
                  "esc cancels)")

    def action_jump(self) -> None:
        if self.sort not in ("newest", "oldest"):
            self.notify("go to a time works with the newest or oldest sort (o)",
                        severity="warning")
            return
        self._ask("jump", "", "a time: 14:05, 2026-01-05 09:30, 2h (ago); empty: back to "
                              "the start  (enter goes, esc cancels)")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            if self._prompt == "jump":
                at = parse_time(event.value, self.dashboard.clock()) if event.value.strip() \
                    else None
            else:
                filters = parse_filter(event.value, self.filters)
        except (InvalidFilter, ValueError) as exc:
            # The box stays open with what was typed: nothing is lost.
            self.notify(str(exc), title="not applied", severity="error", timeout=8)
            self.query_one("#filter-line", Static).update(
                fmt.markup(f"[red]{fmt.safe(str(exc))}[/]"))
            return
        event.input.display = False
        self.table.focus()
        if self._prompt == "jump":
            self._restart(at)
        else:
            self.set_filter(filters)

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.table.focus()
            self._describe()
            return
        if self.filters != JobFilter() or self.jumped_to is not None:
            self.set_filter(JobFilter())

    def action_cycle_state(self) -> None:
        states = list(JOB_STATES)
        current = states.index(self.filters.state) if self.filters.state in states else 0
        self.set_filter(with_state(self.filters, states[(current + 1) % len(states)]))

    def set_sort(self, sort: str) -> None:
        """Order the list by ``sort`` (one of ``JOB_SORTS``) from the first page."""
        self.sort = sort
        self._mark_sort()
        self._restart()

    def _mark_sort(self) -> None:
        for key, label in COLUMNS:
            mark = SORT_MARKS.get(key, {}).get(self.sort, "")
            self.table.columns[ColumnKey(key)].label = Text(label + mark)
        self.table.refresh()

    def action_cycle_sort(self) -> None:
        self.set_sort(JOB_SORTS[(JOB_SORTS.index(self.sort) + 1) % len(JOB_SORTS)])

    def on_data_table_header_selected(self, event: KeyedTable.HeaderSelected) -> None:
        event.stop()
        wanted = HEADER_SORTS.get(event.column_key.value or "")
        if wanted == "newest" and self.sort == "newest":
            wanted = "oldest"
        if wanted is not None:
            self.set_sort(wanted)

    def action_page(self, step: int) -> None:
        if self.jump is not None:
            return
        if step > 0:
            if self.next_key is None:
                self.notify("this is the last page")
                return
            self.starts.append(self.next_key)
        elif len(self.starts) > 1:
            self.starts.pop()
        else:
            return
        self.next_key = None
        self.table.start_over()
        self._describe()
        self.dashboard.poll_now()

    def action_retry(self) -> None:
        if key := self.table.target_key():
            self.act(f"retried {short_id(key)}", actions.retry_job, key,
                     refused=f"cannot retry {short_id(key)}")

    def action_discard(self) -> None:
        if key := self.table.target_key():
            self.confirm(f"Discard job {short_id(key)}? It will not run again.",
                         lambda: self.act(f"discarded {short_id(key)}", actions.discard_job, key,
                                          refused=f"cannot discard {short_id(key)}"))

    def action_cancel(self) -> None:
        if key := self.table.target_key():
            self.act(f"cancelled {short_id(key)}", cancel_from_dashboard, key,
                     self.dashboard.limits, refused=f"cannot cancel {short_id(key)}")

    def action_retry_all(self) -> None:
        ask_bulk(self, "retry", self.filters)

    def action_discard_all(self) -> None:
        ask_bulk(self, "discard", self.filters)

    def action_copy(self) -> None:
        if key := self.table.target_key():
            self.app.copy_to_clipboard(key)
            self.notify(f"copied {key}")
