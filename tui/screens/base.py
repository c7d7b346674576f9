"""What every top-level screen shares: tabs, summary strip, status line, footer.

A screen says what to read (:meth:`DataScreen.poll_request`, on the UI thread),
reads it (:meth:`DataScreen.fetch`, in the poll thread, through the data layer
only) and shows it (:meth:`DataScreen.apply`, on the UI thread). The app owns
the polling loop; a screen never touches the database itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer

from runner.config import Settings
from runner.readmodel.dashboard import Summary
from runner.store.db import Database
from tui.throttle import Throttle
from tui.widgets.nav_bar import NavBar
from tui.widgets.summary_bar import StatusLine, SummaryBar

#: Actions that write; hidden and refused when the dashboard is read-only.
WRITE_ACTIONS = frozenset({"retry", "discard", "retry_all", "discard_all", "cancel",
                           "pause", "run_now", "replay"})


@dataclass(frozen=True)
class TabCounts:
    """What the tab labels count, read with every poll."""

    summary: Summary
    schedules: int
    unhandled_events: int


@dataclass(frozen=True)
class PollOutcome:
    """What one poll read, or why it could not."""

    at: float
    seconds: float
    counts: TabCounts | None = None
    rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    data: Any = None
    error: str | None = None


class Dashboard(Protocol):
    """What a screen uses of the app that polls for it (``tui.app.DashboardApp``)."""

    settings: Settings | None
    throttle: Throttle
    fresh_pending: bool

    @property
    def read_only(self) -> bool: ...

    def data_screen(self) -> DataScreen | None: ...

    def poll_now(self, *, timed: bool = False) -> None: ...

    def run_write(self, label: str, fn: Callable[..., Any], *args: Any) -> None: ...

    def switch_mode(self, mode: str) -> Any: ...


class DataScreen(Screen):
    """A screen fed by the app's poll loop."""

    TITLE: ClassVar[str] = ""
    MODE: ClassVar[str] = ""
    AUTO_FOCUS = "KeyedTable, Log, VerticalScroll"

    @property
    def dashboard(self) -> Dashboard:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield NavBar(id="nav")
        yield SummaryBar(id="summary")
        yield from self.compose_body()
        yield StatusLine(id="status")
        yield Footer()

    def compose_body(self) -> Iterable[Widget]:
        """The screen's own widgets, between the summary strip and the status line."""
        return ()

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        """The count shown on this screen's tab ('' for none)."""
        return ""

    def poll_request(self) -> Any:
        """What the next poll should read for this screen (read on the UI thread)."""
        return None

    def fetch(self, db: Database, request: Any, now: float) -> Any:
        """Read this screen's data; runs in the poll thread, must not touch widgets."""
        return None

    def apply(self, data: Any) -> None:
        """Show data read by :meth:`fetch` (UI thread)."""

    def show_poll(self, outcome: PollOutcome, status: str,
                  tabs: list[tuple[str, str, str]]) -> None:
        """Show one poll: tabs, summary, status, then the screen's own data."""
        self.query_one(NavBar).show(tabs, self.TITLE)
        if outcome.error is not None or outcome.counts is None:
            self.show_status(status, problem=True)
            return
        self.query_one(SummaryBar).show(outcome.counts.summary)
        self.show_status(status)
        self.apply(outcome.data)

    def show_status(self, text: str, *, problem: bool = False) -> None:
        self.query_one(StatusLine).show(text, problem=problem)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.dashboard.read_only:
            return False
        return True

    def act(self, label: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run a write from :mod:`runner.control` in a thread, then refresh."""
        self.dashboard.run_write(label, fn, *args)

    def confirm(self, question: str, then: Callable[[], None]) -> None:
        """Ask ``question`` in a modal; run ``then`` on yes."""
        from tui.screens.confirm import ConfirmScreen

        def done(answer: bool | None) -> None:
            if answer:
                then()

        self.app.push_screen(ConfirmScreen(question), done)
