"""Overview: throughput charts over a chosen range, queues with run times, workers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from runner.clock_drift import over_limit, server_age, signed
from runner.config import Settings
from runner.readmodel.dashboard import (
    RECENT_SAMPLE,
    RunTimes,
    WorkerLoad,
    recent_run_times,
    worker_loads,
)
from runner.readmodel.health import STALLED_PREFIX
from runner.readmodel.queues import QueueInfo, queues_view
from runner.store.backend import Store
from runner.store.owners import worker_gone
from runner.store.rows import JobFilter
from runner.store.states import JobState
from tui import format as fmt
from tui.rates import RANGES
from tui.screens.base import DataScreen, TabCounts
from tui.screens.queues import running_cell
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.summary_bar import Line

# The rows of the Queues view (the same queues, counts and rate), with run times.
# "waiting" is ready now, as on the summary strip and the Queues view; jobs due later
# and failed ones waiting out a backoff have columns of their own.
QUEUE_COLUMNS = [("queue", "queue"), ("waiting", "waiting"),
                 ("n_scheduled", JobState.SCHEDULED.value), ("n_retrying", JobState.RETRYING.value),
                 ("running", "running"), ("oldest", "oldest waiting"), ("rate", "done/min"),
                 ("p50", "p50"), ("p95", "p95")]
WORKER_COLUMNS = [("worker", "host/pid"), ("state", "state"), ("heartbeat", "heartbeat"),
                  ("clock", "clock"), ("rss", "RSS"), ("cpu", "CPU"), ("running", "running"),
                  ("prefetched", "prefetched"), ("processed", "processed"),
                  ("jobs", "current jobs")]
WORKER_NARROW = [("worker", 14), ("state", 7), ("heartbeat", 14), ("running", 7),
                 ("prefetched", 10), ("processed", None)]
RANGE_NAMES = tuple(RANGES)


@dataclass(frozen=True)
class OverviewData:
    queues: list[QueueInfo]
    """The Queues view's rows: configured queues and those with jobs or recent activity."""
    workers: list[WorkerLoad]
    now: float
    times: tuple[RunTimes, dict[str, RunTimes]] | None = None


def time_axis(start: float, end: float, width: int) -> str:
    """``09:00        09:30        now`` spread over ``width`` cells (local time)."""
    width = max(width, 12)
    left = dt.datetime.fromtimestamp(start).strftime("%H:%M")
    middle = dt.datetime.fromtimestamp((start + end) / 2).strftime("%H:%M")
    right = "now"
    gap = width - len(left) - len(middle) - len(right)
    first = gap // 2
    return f"{left}{' ' * first}{middle}{' ' * (gap - first)}{right}"


def range_label(name: str) -> str:
    """``/ 5 min · 6h``: the bucket and the span of a chart range."""
    width, _count = RANGES[name]
    per = "min" if width == 60 else f"{width // 60} min"
    return f"/ {per} · {name}"


class OverviewScreen(DataScreen):
    """Is work flowing? Rates, backlogs and worker liveness."""

    TITLE = "Overview"
    MODE = "overview"
    BINDINGS = [
        Binding("enter", "open", "Jobs of row"),
        Binding("t", "cycle_range", "Chart range"),
    ]
    HELP = [("j / k, g / G", "move in the table"), ("tab", "next table"),
            ("enter", "the jobs of the queue, or the jobs the worker is running"),
            ("t", "chart range: last 1h, 6h, 24h")]

    _shown_series: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.chart_range = RANGE_NAMES[0]

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="sparks"):
            with Vertical(classes="spark"):
                yield Line(JobState.COMPLETED, id="completed-label")
                yield Sparkline([0] * 60, id="completed")
                yield Line("", id="completed-axis", classes="axis")
            with Vertical(classes="spark"):
                yield Line("failed attempts", id="failed-label")
                yield Sparkline([0] * 60, id="failed")
                yield Line("", id="failed-axis", classes="axis")
        yield Line("Queues", classes="section", id="queues-title")
        yield KeyedTable(QUEUE_COLUMNS, noun="queue", id="queues")
        yield Static("Workers", classes="section")
        yield KeyedTable(WORKER_COLUMNS, narrow=WORKER_NARROW, noun="worker", id="workers")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        return ""

    def poll_request(self) -> Any:
        # An explicit refresh reads the queues again
        return self.dashboard.settings or Settings(), self.dashboard.fresh_pending

    def fetch(self, store: Store, request: Any, now: float) -> OverviewData:
        settings, fresh = request
        throttle = self.dashboard.throttle
        # The Queues view's read, under its key: both screens show one reading
        view = throttle.read("queues-view", lambda: queues_view(store, settings, now),
                             fresh=fresh)
        times = throttle.read("run-times", lambda: recent_run_times(store), fresh=fresh)
        return OverviewData(view.queues, worker_loads(store), now, times)

    def show_poll(self, outcome, status, tabs) -> None:  # noqa: ANN001
        if outcome.error is None:
            self.show_chart(outcome.at)
        super().show_poll(outcome, status, tabs)

    def show_chart(self, now: float) -> None:
        """Draw both charts for the chosen range from the app's rate history."""
        rates = self.dashboard.rates
        start, completed, failed = rates.series(self.chart_range, now)
        loaded = rates.loaded_since()
        key = (self.chart_range, start, completed, failed, loaded)
        if key == self._shown_series:
            return
        self._shown_series = key
        width, count = RANGES[self.chart_range]
        partial = loaded is not None and loaded > start
        note = " [dim]reading history…[/]" if partial else ""
        for name, values, title in ((JobState.COMPLETED, completed, JobState.COMPLETED),
                                    ("failed", failed, "failed attempts")):
            self.query_one(f"#{name}", Sparkline).data = list(values)
            self.query_one(f"#{name}-label", Line).show_text(
                f"{title} {range_label(self.chart_range)}: {fmt.count(sum(values))} "
                f"(peak {fmt.count(max(values))}){note}")
            spark = self.query_one(f"#{name}", Sparkline)
            self.query_one(f"#{name}-axis", Line).show_text(
                time_axis(start, start + width * count, spark.size.width or 60))

    def apply(self, data: OverviewData | None) -> None:
        if data is None:
            return
        overall, by_queue = data.times if data.times is not None else (None, {})
        if overall is not None:
            self.query_one("#queues-title", Line).show_text(
                f"Queues   run time p50 [b]{fmt.duration(overall.p50)}[/]  "
                f"p95 [b]{fmt.duration(overall.p95)}[/]  [dim](newest "
                f"{fmt.count(min(overall.sample, RECENT_SAMPLE))} completed jobs)[/]")
        rows = []
        for q in data.queues:
            t = by_queue.get(q.name)
            shown = fmt.safe(q.name) + (" [yellow](paused)[/]" if q.paused else "")
            rows.append((q.name, (shown, fmt.count(q.waiting), fmt.count(q.scheduled),
                                  fmt.count(q.retrying), running_cell(q),
                                  fmt.age(q.oldest_waiting),
                                  fmt.count(q.per_minute),
                                  fmt.duration(t.p50) if t else "-",
                                  fmt.duration(t.p95) if t else "-")))
        self.query_one("#queues", KeyedTable).sync(rows)
        limits = self.dashboard.limits
        self.query_one("#workers", KeyedTable).sync([
            (w.worker.id, self._worker_cells(w, data.now, limits.heartbeat_max_age,
                                             limits.max_clock_drift, limits.node_name))
            for w in data.workers])

    @staticmethod
    def _worker_cells(load: WorkerLoad, now: float, stale_after: float,
                      max_drift: float, node: str | None) -> tuple:
        w = load.worker
        beat = server_age(w.heartbeat_at, w.clock_offset, now)
        heartbeat = fmt.age(beat) + " ago"
        state = w.state
        if worker_gone(w.id, node):  # this host's workers are named by its node name
            state, heartbeat = "[red]dead[/]", f"[red]{heartbeat} (process gone)[/]"
        elif beat > stale_after:  # the threshold of `python -m runner health`
            state, heartbeat = "[red]silent[/]", f"[red]{heartbeat} (stale)[/]"
        elif w.status and w.status.startswith(STALLED_PREFIX):  # the banner says why
            state = "[red]stalled[/]"
        jobs = ", ".join(f"{j.task} {fmt.age(now - j.started_at) if j.started_at else ''}"
                         for j in load.jobs[:4])
        if len(load.jobs) > 4:
            jobs += f" +{len(load.jobs) - 4}"
        cpu = "-" if w.cpu_percent is None else f"{w.cpu_percent:.0f}%"
        # How far its clock is from the server's; red past the limit `health` checks
        clock = signed(w.clock_offset)
        if over_limit(w.clock_offset, max_drift):
            clock = f"[red]{clock}[/]"
        # The heartbeat says how many jobs threads run; the rest it holds are prefetched.
        running = min(w.running, len(load.jobs))
        return (f"{w.host}/{w.pid}", state, heartbeat, clock, fmt.size(w.rss_bytes), cpu,
                f"{running}/{w.concurrency}", fmt.count(len(load.jobs) - running),
                fmt.count(w.processed), jobs or "-")

    # -- keys ------------------------------------------------------------------

    def action_cycle_range(self) -> None:
        self.chart_range = RANGE_NAMES[(RANGE_NAMES.index(self.chart_range) + 1)
                                       % len(RANGE_NAMES)]
        width, count = RANGES[self.chart_range]
        rates = self.dashboard.rates
        rates.minutes = max(rates.minutes, width * count // 60)
        self.show_chart(self.dashboard.clock())
        self.dashboard.poll_now()

    def action_open(self) -> None:
        focused = self.focused
        if not isinstance(focused, KeyedTable) or (key := focused.target_key()) is None:
            return
        if focused.id == "queues":
            wanted = JobFilter(queue=key)
        else:
            wanted = JobFilter(state=JobState.EXECUTING, worker=key)
        self.app.run_worker(self._open(wanted), exclusive=True, group="navigate")

    async def _open(self, wanted: JobFilter) -> None:
        await self.dashboard.switch_mode("jobs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_filter"):
            screen.set_filter(wanted)

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()
