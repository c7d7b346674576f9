"""Events: recent emits with each handler's outcome; unhandled ones; replay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.readmodel.events import EventView, event_views
from runner.store.backend import Store
from runner.store.rows import JobFilter, short_id
from tui import format as fmt
from tui.screens.base import DataScreen, TabCounts
from tui.screens.event_detail import OUTCOME_STYLE, EventDetailScreen
from tui.widgets.keyed_table import KeyedTable, OpenableTable

COLUMNS = [("id", "id"), ("name", "name"), ("emitted", "emitted"), ("status", "status"),
           ("source", "source"), ("handlers", "handlers")]
#: Below 120 cells: which event, and what its handlers made of it.
NARROW = [("id", 12), ("name", 16), ("status", 10), ("handlers", None)]


def event_cells(e: EventView, now: float) -> tuple:
    """The table cells of one event."""
    status = "[red]unhandled[/]" if e.status == "unhandled" else e.status
    outcomes = "  ".join(
        f"{fmt.safe(h)} [{OUTCOME_STYLE.get(o, 'dim')}]{o}[/]" for h, o in e.outcomes) or "-"
    return (short_id(e.id), fmt.safe(e.name), fmt.relative(e.emitted_at, now), status,
            fmt.safe(e.source or "-"), outcomes)


class EventsScreen(DataScreen):
    """What was emitted, and what every handler made of it."""

    TITLE = "Events"
    MODE = "events"
    BINDINGS = [
        Binding("enter", "open", "Detail"),
        Binding("h", "handler_jobs", "Handler jobs"),
        Binding("u", "toggle_unhandled", "Unhandled only"),
        Binding("r", "replay", "Replay failed"),
        Binding("R", "replay_all", "Replay to all"),
    ]
    HELP = [("j / k, g / G", "move, first / last event"),
            ("enter", "the event: payload and handlers"),
            ("h", "the event's handler jobs on the Jobs screen"),
            ("u", "show only unhandled events, or all"),
            ("r", "replay the event to the handlers whose delivery failed (dead)"),
            ("R", "replay the event to every handler, completed ones too (asks first)")]

    def __init__(self) -> None:
        super().__init__()
        self.unhandled_only = False
        self.events: dict[str, EventView] = {}

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="events-note", classes="section")
        yield OpenableTable(COLUMNS, narrow=NARROW, noun="event", id="events")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        return f"{fmt.count(counts.unhandled_events)} unhandled" if counts.unhandled_events else ""

    def poll_request(self) -> Any:
        return self.unhandled_only

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        return request, event_views(store, unhandled_only=request), now

    def apply(self, data: Any) -> None:
        if data is None or data[0] != self.unhandled_only:
            return
        _, views, now = data
        self.events = {v.id: v for v in views}
        which = "unhandled events" if self.unhandled_only else "recent events"
        self.query_one("#events-note", Static).update(
            f"{len(views)} {which}" if views else f"no {which} in this database")
        self.query_one(KeyedTable).sync([(v.id, event_cells(v, now)) for v in views])

    def _selected(self) -> EventView | None:
        key = self.query_one(KeyedTable).target_key()
        return self.events.get(key) if key else None

    def action_toggle_unhandled(self) -> None:
        self.unhandled_only = not self.unhandled_only
        self.query_one(KeyedTable).start_over()
        self.dashboard.poll_now()

    def action_open(self) -> None:
        if (e := self._selected()) is not None:
            self.app.push_screen(EventDetailScreen(e.id))

    def action_handler_jobs(self) -> None:
        if (e := self._selected()) is not None:
            self.app.run_worker(self._open(e.id), exclusive=True, group="navigate")

    async def _open(self, event_id: str) -> None:
        await self.dashboard.switch_mode("jobs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_filter"):
            screen.set_filter(JobFilter(event_id=event_id))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_replay(self) -> None:
        # No question asked, as for retry on Jobs: only failed deliveries are redone, and
        # the store checks "newest delivery dead" as it writes, so a second press (or a
        # replay from the CLI at the same time) does not deliver twice.
        if (e := self._selected()) is not None:
            self.act(f"replay of {short_id(e.id)}", self._replay_failed, e.id,
                     refused=f"cannot replay {short_id(e.id)}")

    def action_replay_all(self) -> None:
        if (e := self._selected()) is not None:
            self.confirm(
                f"Replay event [b]{fmt.safe(e.name)}[/] {short_id(e.id)} to [b]every handler[/]? "
                "A worker delivers it again to every handler it has now, those that "
                "completed too.",
                lambda: self.act(f"replay of {short_id(e.id)} to every handler queued",
                                 self._replay_all, e.id,
                                 refused=f"cannot replay {short_id(e.id)}"))

    def _replay_failed(self, store: Store, event_id: str) -> str:
        done = actions.replay_events([event_id], only_failed=True, store=store,
                                     settings=self.dashboard.settings)
        if not done.jobs:
            return ("nothing failed: no handler's delivery of it is dead, nothing written "
                    "(R replays it to every handler)")
        return (f"queued as job {short_id(done.jobs[0])}: a worker redelivers it to the "
                "handlers whose delivery failed")

    def _replay_all(self, store: Store, event_id: str) -> str:
        job = actions.replay(event_id, store=store, settings=self.dashboard.settings)
        return f"job {short_id(job)}"
