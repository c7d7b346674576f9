"""Queues: jobs by state, the oldest wait, limits, rate and pause of each queue; p pauses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.config import Settings
from runner.readmodel.queues import QueueInfo, QueuesView, queues_view
from runner.store.backend import Store
from runner.store.states import JobState
from tui import format as fmt
from tui.screens.base import DataScreen
from tui.widgets.keyed_table import KeyedTable

# Column keys are not state names (those are spelled in runner.store.states only).
COLUMNS = [("queue", "queue"), ("n_waiting", "waiting"),
           ("n_scheduled", JobState.SCHEDULED.value), ("n_running", "running"),
           ("n_retrying", JobState.RETRYING.value), ("n_dead", JobState.DEAD.value),
           ("oldest", "oldest waiting"), ("rate", "done/min"), ("limits", "limits"),
           ("refused", "rejected/dropped"), ("state", "state")]
#: Below 120 cells: which queue, how much waits and for how long, and whether it is paused.
NARROW = [("queue", 14), ("n_waiting", 8), ("n_running", 8), ("oldest", 10), ("state", None)]


def limits(q: QueueInfo) -> str:
    """``max 1000 block, concurrency 5, rate 100/m``."""
    parts = [f"max {q.max_size} {q.on_full}" if q.max_size else "unbounded"]
    if q.concurrency:
        parts.append(f"concurrency {q.concurrency}")
    if q.rate_limit:
        parts.append(f"rate {fmt.safe(q.rate_text)}")
    if q.weight != 1:
        parts.append(f"weight {q.weight}")
    return ", ".join(parts)


def running_cell(q: QueueInfo) -> str:
    """``3``, or ``0 +2 stalled`` while jobs of a dead worker wait for recovery."""
    stalled = f" [red]+{fmt.count(q.stalled)} stalled[/]" if q.stalled else ""
    return fmt.count(q.running) + stalled


def queue_cells(q: QueueInfo) -> tuple:
    """The table cells of one queue."""
    state = (f"[yellow]paused[/] by {fmt.safe(q.paused_by or '?')}" if q.paused else
             "active [dim](pause pending)[/]" if q.pause_pending else "active")
    dead = f"[red]{fmt.count(q.dead)}[/]" if q.dead else "0"
    return (fmt.safe(q.name), fmt.count(q.waiting), fmt.count(q.scheduled),
            running_cell(q), fmt.count(q.retrying), dead,
            "-" if q.oldest_waiting is None else fmt.duration(q.oldest_waiting),
            fmt.count(q.per_minute), limits(q), f"{q.rejected}/{q.dropped}", state)


class QueuesScreen(DataScreen):
    """Is work flowing through every queue, and which ones are held?"""

    TITLE = "Queues"
    MODE = "queues"
    BINDINGS = [Binding("p", "pause", "Pause/resume")]
    HELP = [("j / k, g / G", "move, first / last queue"),
            ("p", "pause or resume the queue (waiting jobs stay, running ones finish)")]

    def __init__(self) -> None:
        super().__init__()
        self.queues: dict[str, QueueInfo] = {}

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="queues-note", classes="section")
        yield KeyedTable(COLUMNS, narrow=NARROW, noun="queue", id="queues")

    def poll_request(self) -> Any:
        # An explicit refresh (a key, an action) reads anew; timed ones may reuse the counts.
        return self.dashboard.settings or Settings(), self.dashboard.fresh_pending

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        settings, fresh = request
        return self.dashboard.throttle.read(
            "queues-view", lambda: queues_view(store, settings, now), fresh=fresh)

    def apply(self, data: Any) -> None:
        if data is None:
            return
        view: QueuesView = data
        self.queues = {q.name: q for q in view.queues}
        paused = [q.name for q in view.queues if q.paused]
        note = f"{len(view.queues)} queues, {len(paused)} paused"
        if view.paused_tasks:
            note += "; paused tasks: " + ", ".join(fmt.safe(p.name) for p in view.paused_tasks)
        self.query_one("#queues-note", Static).update(fmt.markup(note))
        self.query_one(KeyedTable).sync([(q.name, queue_cells(q)) for q in view.queues])

    def action_pause(self) -> None:
        key = self.query_one(KeyedTable).target_key()
        q = self.queues.get(key) if key else None
        if q is None:
            return
        verb = actions.resume_queue if q.paused else actions.pause_queue
        word = "resume" if q.paused else "pause"
        def change(store: Store) -> None:
            verb(q.name, by=actions.actor("dashboard"), store=store)

        self.act(f"{word}d {q.name}", change, refused=f"cannot {word} {q.name}")
