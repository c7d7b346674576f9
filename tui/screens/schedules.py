"""Schedules: periodic tasks with next and last fire; pause, resume, run now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.readmodel.schedules import ScheduleView, schedule_views
from runner.store.backend import Store
from runner.store.rows import short_id
from runner.store.states import JobState
from tui import format as fmt
from tui.screens.base import DataScreen, TabCounts
from tui.widgets.keyed_table import KeyedTable

COLUMNS = [("name", "name"), ("task", "task"), ("expression", "expression"), ("tz", "tz"),
           ("next", "next fire"), ("last", "last fire"), ("outcome", "outcome"),
           ("lag", "lag"), ("paused", "paused")]
#: Below 120 cells: which schedule, when it fires next, how the last fire went.
NARROW = [("name", 18), ("expression", 14), ("next", 14), ("outcome", 10), ("lag", None)]


def schedule_cells(s: ScheduleView, now: float) -> tuple:
    """The table cells of one schedule."""
    paused = "[yellow]paused[/]" if s.paused else ("disabled" if not s.enabled else "")
    outcome = s.last_outcome or "-"
    if outcome in (JobState.DEAD, "failed") or outcome.startswith("skipped"):
        outcome = f"[red]{outcome}[/]"
    lag = fmt.duration(s.lag) if s.lag else "-"
    if s.overdue:
        lag = f"[red]{lag} late[/]"
    # A paused schedule does not fire: its stored next fire is a past slot, not a plan.
    upcoming = "[yellow]paused[/]" if s.paused else next_fire(s, now)
    return (fmt.safe(s.name), fmt.safe(s.task), fmt.safe(s.expression), s.tz,
            upcoming, fmt.relative(s.last_fired_at, now), outcome, lag, paused)


def next_fire(s: ScheduleView, now: float) -> str:
    """``in 12s · 09:00 Europe/Paris``: when, and the wall time in the schedule's own zone
    (``(skipped)`` after it when skip-next will skip that slot)."""
    if s.next_fire_at is None or s.paused or not s.enabled:
        return "-"
    skipped = " (skipped)" if s.skip_next else ""
    return f"{fmt.relative(s.next_fire_at, now)} · {fmt.zoned(s.next_fire_at, s.tz, now)}{skipped}"


def unchanged(changed: bool, why: str) -> str | None:
    """What a schedule action adds to its message: nothing, or why nothing changed."""
    return None if changed else why


class SchedulesScreen(DataScreen):
    """Is every periodic task firing on time?"""

    TITLE = "Schedules"
    MODE = "schedules"
    BINDINGS = [
        Binding("p", "pause", "Pause/resume"),
        Binding("t", "run_now", "Run now"),
        Binding("n", "skip_next", "Skip next"),
    ]
    HELP = [("j / k, g / G", "move, first / last schedule"),
            ("p", "pause or resume the schedule"), ("t", "run the schedule's task now"),
            ("n", "skip the schedule's next slot")]

    def __init__(self) -> None:
        super().__init__()
        self.schedules: dict[str, ScheduleView] = {}

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="schedules-note", classes="section")
        yield KeyedTable(COLUMNS, narrow=NARROW, noun="schedule", id="schedules")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        return fmt.count(counts.schedules) if counts.schedules else ""

    def poll_request(self) -> Any:
        return True

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        return schedule_views(store, now), now

    def apply(self, data: Any) -> None:
        if data is None:
            return
        views, now = data
        self.schedules = {v.name: v for v in views}
        self.query_one("#schedules-note", Static).update(
            f"{len(views)} schedules" if views else
            "no schedules in this database (define them with @scheduled_task)")
        self.query_one(KeyedTable).sync([(v.name, schedule_cells(v, now)) for v in views])

    def _selected(self) -> ScheduleView | None:
        key = self.query_one(KeyedTable).target_key()
        return self.schedules.get(key) if key else None

    def action_pause(self) -> None:
        if (s := self._selected()) is not None:
            verb = "resumed" if s.paused else "paused"
            verb_fn = actions.resume_schedule if s.paused else actions.pause_schedule
            why = "it was not paused" if s.paused else "it was paused already"

            def toggle(store: Store) -> str | None:
                return unchanged(verb_fn(s.name, store=store), why)

            self.act(f"{verb} {s.name}", toggle,
                     refused=f"cannot {'resume' if s.paused else 'pause'} {s.name}")

    def action_skip_next(self) -> None:
        if (s := self._selected()) is not None:
            def skip(store: Store) -> str | None:
                return unchanged(actions.skip_next_run(s.name, store=store),
                                 "already asked (one at a time)")

            self.act(f"skipping the next run of {s.name}", skip,
                     refused=f"cannot skip the next run of {s.name}")

    def action_run_now(self) -> None:
        if (s := self._selected()) is not None:
            self.confirm(f"Run schedule [b]{fmt.safe(s.name)}[/] ({fmt.safe(s.task)}) now?",
                         lambda: self.act(f"run now {s.name}", self._run_now, s.name,
                                          refused=f"cannot run {s.name}"))

    def _run_now(self, store: Store, name: str) -> str:
        run = actions.run_now(name, store=store, settings=self.dashboard.settings)
        return f"{run.wording} {short_id(run.job_id)}"
