"""Overview: throughput sparklines, queues and workers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Sparkline, Static

from runner.readmodel.dashboard import QueueLoad, WorkerLoad, queue_loads, worker_loads
from runner.store.db import Database
from runner.store.workers import worker_gone
from tui import format as fmt
from tui.screens.base import DataScreen, TabCounts
from tui.widgets.keyed_table import KeyedTable
from tui.widgets.summary_bar import Line

QUEUE_COLUMNS = [("queue", "queue"), ("waiting", "waiting"), ("running", "running"),
                 ("oldest", "oldest waiting")]
WORKER_COLUMNS = [("worker", "host/pid"), ("state", "state"), ("heartbeat", "heartbeat"),
                  ("rss", "RSS"), ("cpu", "CPU"), ("running", "running"),
                  ("prefetched", "prefetched"), ("processed", "processed"),
                  ("jobs", "current jobs")]
WORKER_NARROW = [("worker", 14), ("state", 7), ("heartbeat", 14), ("running", 7),
                 ("prefetched", 10), ("processed", None)]


@dataclass(frozen=True)
class OverviewData:
    queues: list[QueueLoad]
    workers: list[WorkerLoad]
    now: float


class OverviewScreen(DataScreen):
    """Is work flowing? Rates, backlogs and worker liveness."""

    TITLE = "Overview"
    MODE = "overview"
    HELP = [("j / k, g / G", "move in the table (tab: the next table)")]

    _rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def compose_body(self) -> Iterable[Widget]:
        with Horizontal(id="sparks"):
            with Vertical(classes="spark"):
                yield Line("completed / min, last hour", id="completed-label")
                yield Sparkline([0] * 60, id="completed")
            with Vertical(classes="spark"):
                yield Line("failed attempts / min, last hour", id="failed-label")
                yield Sparkline([0] * 60, id="failed")
        yield Static("Queues", classes="section")
        yield KeyedTable(QUEUE_COLUMNS, id="queues")
        yield Static("Workers", classes="section")
        yield KeyedTable(WORKER_COLUMNS, narrow=WORKER_NARROW, id="workers")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        return ""

    def poll_request(self) -> Any:
        return self.dashboard.fresh_pending  # an explicit refresh reads the queues again

    def fetch(self, db: Database, request: Any, now: float) -> OverviewData:
        queues = self.dashboard.throttle.read("queues", lambda: queue_loads(db, now),
                                              fresh=request)
        return OverviewData(queues, worker_loads(db), now)

    def show_poll(self, outcome, status, tabs) -> None:  # noqa: ANN001
        if outcome.rates is not None and outcome.rates != self._rates:
            self._rates = outcome.rates
            completed, failed = outcome.rates
            self.query_one("#completed", Sparkline).data = list(completed)
            self.query_one("#failed", Sparkline).data = list(failed)
            self.query_one("#completed-label", Line).show_text(
                f"completed / min, last hour: {fmt.count(sum(completed))} total, "
                f"peak {fmt.count(max(completed))}")
            self.query_one("#failed-label", Line).show_text(
                f"failed attempts / min, last hour: {fmt.count(sum(failed))} total, "
                f"peak {fmt.count(max(failed))}")
        super().show_poll(outcome, status, tabs)

    def apply(self, data: OverviewData | None) -> None:
        if data is None:
            return
        self.query_one("#queues", KeyedTable).sync([
            (q.queue, (q.queue, fmt.count(q.waiting), fmt.count(q.running),
                       fmt.age(q.oldest_waiting_age)))
            for q in data.queues])
        stale_after = self.dashboard.limits.heartbeat_max_age
        self.query_one("#workers", KeyedTable).sync([
            (w.worker.id, self._worker_cells(w, data.now, stale_after)) for w in data.workers])

    @staticmethod
    def _worker_cells(load: WorkerLoad, now: float, stale_after: float) -> tuple:
        w = load.worker
        beat = now - w.heartbeat_at
        heartbeat = fmt.age(beat) + " ago"
        state = w.state
        if worker_gone(w.id):
            state, heartbeat = "[red]dead[/]", f"[red]{heartbeat} (process gone)[/]"
        elif beat > stale_after:  # the threshold of `python -m runner health`
            state, heartbeat = "[red]silent[/]", f"[red]{heartbeat} (stale)[/]"
        jobs = ", ".join(f"{j.task} {fmt.age(now - j.started_at) if j.started_at else ''}"
                         for j in load.jobs[:4])
        if len(load.jobs) > 4:
            jobs += f" +{len(load.jobs) - 4}"
        cpu = "-" if w.cpu_percent is None else f"{w.cpu_percent:.0f}%"
        # The heartbeat says how many jobs threads run; the rest it holds are prefetched.
        running = min(w.running, len(load.jobs))
        return (f"{w.host}/{w.pid}", state, heartbeat, fmt.size(w.rss_bytes), cpu,
                f"{running}/{w.concurrency}", fmt.count(len(load.jobs) - running),
                fmt.count(w.processed), jobs or "-")
