"""Event detail: the payload, where it came from, and what each handler made of it."""

from __future__ import annotations

import json

from rich.markup import escape
from textual.binding import Binding

from runner.errors import EventNotFound
from runner.readmodel.events import EventDetail, event_detail
from runner.store.backend import Store
from runner.store.rows import JobFilter, short_id
from tui import format as fmt
from tui.screens.detail import DetailScreen

#: How a handler's outcome is coloured (the Events table uses it too).
OUTCOME_STYLE = {"dead": "red", "running": "cyan", "pending": "yellow", "completed": "green"}


def event_text(detail: EventDetail, now: float) -> str:
    """The whole event as markup (pure, so it can be tested without a terminal)."""
    e = detail.event
    try:
        payload = json.dumps(json.loads(e.data), indent=2, ensure_ascii=False)
    except ValueError:
        payload = e.data
    lines = [f"[b]{escape(e.name)}[/]  {e.id}",
             f"status [b]{e.status}[/]  emitted {fmt.full_stamp(e.emitted_at)} "
             f"({fmt.relative(e.emitted_at, now)})  source {escape(e.source or '-')}  "
             f"key {escape(e.key or '-')}  deliveries {e.deliveries}",
             "", "[b]Payload[/]", escape(payload), "", "[b]Handlers[/]"]
    for o in detail.outcomes:
        style = OUTCOME_STYLE.get(o.outcome, "dim")
        lines.append(f"  {escape(o.handler):<30} [{style}]{o.outcome}[/]  job {short_id(o.job_id)}"
                     f"  attempts {o.attempts}  deliveries {o.deliveries}")
    if not detail.outcomes:
        lines.append("  (no handler has taken it)")
    return "\n".join(lines)


class EventDetailScreen(DetailScreen):
    """One event, refreshed live; ``esc`` goes back."""

    TITLE = "Event"
    MODE = ""
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("h", "handler_jobs", "Handler jobs"),
        Binding("y", "copy", "Copy payload"),
        Binding("j", "scroll(1)", "Down", show=False),
        Binding("k", "scroll(-1)", "Up", show=False),
    ]
    HELP = [("esc", "back"), ("h", "the event's handler jobs on the Jobs screen"),
            ("y", "copy the payload"), ("j / k", "scroll")]

    NOT_FOUND = EventNotFound
    SCROLL_ID = "event-scroll"
    TEXT_ID = "event-detail"

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id
        self.detail: EventDetail | None = None

    def read_detail(self, store: Store, record_id: str) -> EventDetail:
        return event_detail(store, record_id)

    def detail_markup(self, detail: EventDetail, now: float) -> str:
        return event_text(detail, now)

    def action_copy(self) -> None:
        if self.detail is not None:
            self.app.copy_to_clipboard(self.detail.event.data)
            self.notify(f"copied the payload of {short_id(self.event_id)}")

    def action_handler_jobs(self) -> None:
        self.app.run_worker(self._jobs(), exclusive=True, group="navigate")

    async def _jobs(self) -> None:
        event_id = self.event_id
        self.app.pop_screen()
        await self.dashboard.switch_mode("jobs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_filter"):
            screen.set_filter(JobFilter(event_id=event_id))
