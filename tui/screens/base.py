"""What every top-level screen shares: tabs, summary strip, status line, footer.

A screen says what to read (:meth:`DataScreen.poll_request`, on the UI thread),
reads it (:meth:`DataScreen.fetch`, in the poll thread, through the data layer
only) and shows it (:meth:`DataScreen.apply`, on the UI thread). The app owns
the polling loop; a screen never touches the database itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget

from runner import control
from runner.config import Settings
from runner.readmodel.dashboard import Summary, is_stalled
from runner.readmodel.dashboard_health import HealthLimits
from runner.readmodel.health import HealthReport
from runner.store.backend import Store
from runner.store.states import JobState
from tui.source import DataSource
from tui.throttle import Throttle
from tui.widgets.key_footer import KeyFooter
from tui.widgets.nav_bar import NavBar
from tui.widgets.summary_bar import HealthBanner, StatusLine, SummaryBar

#: Actions that write; hidden and refused when the dashboard is read-only.
WRITE_ACTIONS = frozenset({"retry", "discard", "retry_all", "discard_all", "cancel",
                           "pause", "run_now", "skip_next", "replay", "replay_all"})


def cancel_from_dashboard(store: Store, job_id: str,
                          limits: HealthLimits | None = None) -> str | None:
    """Cancel a waiting or running job as this dashboard's user; what happens next, if not done.

    A running job whose worker is gone (``limits``: when a worker counts as alive) is
    cancelled once a worker requeues it, not by its own worker.
    """
    was = control.cancel_job(store, job_id, by=control.actor("dashboard"))
    if was is not JobState.EXECUTING:
        return None
    if limits is not None and is_stalled(store, store.get_job(job_id),
                                         limits.heartbeat_max_age, limits.node_name):
        return "its worker is gone: it ends cancelled once a worker requeues it"
    return "it is running: its worker stops it"


@dataclass(frozen=True)
class TabCounts:
    """What the tab labels count, read with every poll."""

    summary: Summary
    schedules: int
    unhandled_events: int
    health: HealthReport | None = None
    """The verdict of ``python -m runner health``, with the same thresholds."""


@dataclass(frozen=True)
class PollOutcome:
    """What one poll read, or why it could not."""

    at: float
    seconds: float
    counts: TabCounts | None = None
    rates: tuple[tuple[int, ...], tuple[int, ...]] | None = None
    data: Any = None
    error: str | None = None
    bug: bool = False
    """The error is a fault of the dashboard's code, not of the database."""


class Dashboard(Protocol):
    """What a screen uses of the app that polls for it (``tui.app.DashboardApp``)."""

    settings: Settings | None
    throttle: Throttle
    fresh_pending: bool
    source: DataSource
    limits: HealthLimits
    clock: Callable[[], float]

    @property
    def read_only(self) -> bool: ...

    def data_screen(self) -> DataScreen | None: ...

    def poll_now(self, *, timed: bool = False) -> None: ...

    def run_write(self, done: str, fn: Callable[..., Any], *args: Any,
                  refused: str) -> None: ...

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
        yield HealthBanner(id="health")
        yield from self.compose_body()
        yield StatusLine(id="status")
        yield KeyFooter(show_command_palette=False)  # ctrl+p still opens it; keys need the room

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

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        """Read this screen's data; runs in the poll thread, must not touch widgets."""
        return None

    def apply(self, data: Any) -> None:
        """Show data read by :meth:`fetch` (UI thread)."""

    def show_poll(self, outcome: PollOutcome, status: str | Sequence[str],
                  tabs: list[tuple[str, str, str, str]]) -> None:
        """Show one poll: tabs, summary, status, then the screen's own data.

        A failed poll keeps the last good data on screen, dimmed.
        """
        self.query_one(NavBar).show(tabs, self.TITLE)
        failed = outcome.error is not None or outcome.counts is None
        if self.has_class("-stale") != failed:  # a class change restyles the whole screen
            self.set_class(failed, "-stale")
        if failed:
            self.show_status(status, problem=True)
            return
        self.query_one(SummaryBar).show(outcome.counts.summary)
        self.query_one(HealthBanner).show(outcome.counts.health)
        self.show_status(status)
        self.apply(outcome.data)

    def show_status(self, text: str | Sequence[str], *, problem: bool = False) -> None:
        """Show the status line: one text, or its forms from the widest to the narrowest."""
        self.query_one(StatusLine).show(text, problem=problem)

    def after_write(self) -> None:
        """An action just wrote to the database: forget anything kept from before."""

    def writes_on(self, key: str) -> bool:
        """True when ``key`` is bound to a write action on this screen."""
        return any(binding.action.split("(")[0] in WRITE_ACTIONS
                   for binding in self._bindings.key_to_bindings.get(key, ()))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in WRITE_ACTIONS and self.dashboard.read_only:
            return False
        return True

    def act(self, done: str, fn: Callable[..., Any], *args: Any, refused: str) -> None:
        """Run a write from :mod:`runner.control` in a thread, then refresh.

        ``done`` is said on success; a refusal reads ``refused: reason``.
        """
        self.dashboard.run_write(done, fn, *args, refused=refused)

    def confirm(self, question: str, then: Callable[[], None], *,
                typed: str | None = None) -> None:
        """Ask ``question`` in a modal; run ``then`` on yes.

        With ``typed``, yes means typing exactly that text (a bulk action's count).
        """
        from tui.screens.confirm import ConfirmScreen, TypedConfirmScreen

        def done(answer: bool | None) -> None:
            if answer:
                then()

        modal = ConfirmScreen(question) if typed is None else TypedConfirmScreen(question, typed)
        self.app.push_screen(modal, done)
