"""The dashboard application: screen registry, poll loop, writes, global keys.

One poll at a time: a thread worker reads the summary, the tab counts and the
current screen's data through the data layer, hands the result to the UI
thread, and only then is the next poll timed (chained, so a slow database never
piles polls up). Writes run in their own thread workers through
:mod:`runner.control` on a read-write handle, and trigger a poll when done.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.worker import get_current_worker

from runner.config import DatabaseSection, Settings
from runner.envfile import service_environment
from runner.readmodel.dashboard import summary as read_summary
from runner.readmodel.dashboard_health import HealthLimits, health_limits, health_verdict
from runner.readmodel.events import unhandled_event_count
from runner.readmodel.schedules import schedule_count
from runner.settings_loader import load_settings
from runner.store.factory import is_url, redis_url
from tui.error_log import ErrorLog
from tui.format import path_tails, safe, stamp
from tui.rates import RateHistory
from tui.screens import SCREENS
from tui.screens.base import DataScreen, PollOutcome, TabCounts
from tui.source import DataSource, is_database_problem
from tui.throttle import Throttle

logger = logging.getLogger(__name__)

DEFAULT_REFRESH = 1.0
#: Longest a busy machine stretches the refresh interval to, in seconds.
MAX_STRETCH = 5.0
#: Keys that write on some screen; refused with a message when actions are off.
WRITE_KEYS = ("r", "d", "c", "R", "D", "p", "t")


class DashboardApp(App[None]):
    """``python -m tui``: live views of the jobs database, with actions."""

    CSS_PATH = "app.tcss"
    TITLE = "jobrunner"
    MODES = {cls.MODE: cls for cls in SCREENS}
    DEFAULT_MODE = SCREENS[0].MODE
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("z", "freeze", "Freeze", id="freeze"),
        Binding("ctrl+r", "refresh_now", "Refresh now", show=False, id="refresh"),
        *[Binding(str(number), f"show_screen('{cls.MODE}')", cls.TITLE, show=False,
                  id=f"screen.{cls.MODE}") for number, cls in enumerate(SCREENS, 1)],
        # Reached only when the screen's own write binding is disabled (actions off).
        *[Binding(key, f"write_refused('{key}')", show=False) for key in WRITE_KEYS],
    ]

    def __init__(self, source: DataSource, *, refresh_seconds: float = DEFAULT_REFRESH,
                 clock: Callable[[], float] = time.time, settings: Settings | None = None,
                 error_log: Path | None = None, node_name: str | None = None) -> None:
        super().__init__()
        self.source = source
        self.settings = settings
        """The settings the dashboard was started with (run-now imports their task modules)."""
        self.limits: HealthLimits = health_limits(settings, node_name=node_name)
        """The ``[health]`` thresholds: the banner and stale workers use the CLI's."""
        self.errors = ErrorLog(error_log)
        """Where tracebacks of the dashboard's own errors are appended."""
        self.last_good: PollOutcome | None = None
        self.refresh_seconds = max(0.2, refresh_seconds)
        self.clock = clock
        self.frozen = False
        self.last: PollOutcome | None = None
        self.polls = 0
        self._timer: Timer | None = None
        self._down_since: float | None = None
        self._polling = False
        self._poll_again = False
        self.rates = RateHistory()
        self.delay = self.refresh_seconds
        """The interval before the next timed poll (stretched when polls are costly)."""
        self.throttle = Throttle()
        """Costly reads (backlog counts) thin out on timed polls; explicit ones read all."""
        self.fresh_pending = True
        """The next poll is explicit (not the timer's): it reads everything anew."""
        self.timings: deque[tuple[float, float]] = deque(maxlen=1000)
        """(seconds reading in the poll thread, seconds to update and paint) of recent polls."""

    @property
    def read_only(self) -> bool:
        return self.source.read_only

    def on_mount(self) -> None:
        if self.read_only:
            self.sub_title = f"read-only ({self.source.read_only_reason})"
        self.call_after_refresh(self.poll_now)

    # -- polling -------------------------------------------------------------

    def data_screen(self) -> DataScreen | None:
        """The topmost data screen of the current mode (under any modal)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DataScreen):
                return screen
        return None

    def poll_now(self, *, timed: bool = False) -> None:
        """Read everything the current screen shows, in a thread, now.

        While a poll is running another is not started beside it: it starts as
        soon as the running one is shown (polls are chained, never piled up).
        Only ``timed`` polls (the refresh timer's) may reuse costly counts.
        """
        if not timed:
            self.fresh_pending = True
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._poll_again = False
        screen = self.data_screen()
        request = screen.poll_request() if screen is not None else None
        fresh, self.fresh_pending = self.fresh_pending, False
        self._poll(screen, request, fresh)

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self, screen: DataScreen | None, request: Any, fresh: bool) -> None:
        worker = get_current_worker()
        started = time.perf_counter()
        now = self.clock()
        try:
            with self.source.reading() as store:
                rates = self.rates.update(store, now)
                summary = self.throttle.read(
                    "summary", lambda: read_summary(
                        store, now, rates, done_last_minute=self.rates.last_minute(now),
                        stale_after=self.limits.heartbeat_max_age,
                        node=self.limits.node_name), fresh=fresh)
                if not self.rates.hour_loaded(now):
                    # Over part of the hour, the rate is not the hour's: none shown yet.
                    summary = replace(summary, error_rate=None)
                health = health_verdict(store, self.limits, now)
                counts = TabCounts(summary, schedule_count(store), unhandled_event_count(store),
                                   health)
                data = screen.fetch(store, request, now) if screen is not None else None
            outcome = PollOutcome(now, time.perf_counter() - started, counts, rates, data)
        except Exception as exc:  # noqa: BLE001 - any failure is shown, then retried
            outcome = self._failed(exc, now, time.perf_counter() - started)
        if worker.is_cancelled:
            self._polling = False
        else:
            self.call_from_thread(self._apply, screen, outcome)

    def _failed(self, exc: Exception, at: float, seconds: float) -> PollOutcome:
        """The outcome of a poll that raised: a database problem, or a bug (logged)."""
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        bug = not is_database_problem(exc)
        if bug:
            self.errors.record(exc, text, f"dashboard on {self.source.path}")
        else:
            logger.debug("poll failed", exc_info=True)
        return PollOutcome(at, seconds, error=text if bug else str(exc) or text, bug=bug)

    def _apply(self, screen: DataScreen | None, outcome: PollOutcome) -> None:
        self._polling = False
        self.polls += 1
        began = time.perf_counter()
        try:
            self._show(screen, outcome)
        except Exception as exc:  # noqa: BLE001 - a bug in showing must not stop the refresh
            self._show(screen, self._failed(exc, outcome.at, outcome.seconds))
        finally:
            # Time the next poll once this one is on screen: painting a changed table can
            # cost more than reading it, and both count against the refresh budget.
            self.call_after_refresh(self._shown, outcome, began)

    def _show(self, screen: DataScreen | None, outcome: PollOutcome) -> None:
        self.last = outcome
        if outcome.error is None:
            self._down_since = None
        elif self._down_since is None:
            self._down_since = outcome.at
        if screen is not None and screen.is_attached:
            screen.show_poll(outcome, self.status_forms(outcome), self.tabs(outcome))
        if outcome.error is None:
            self.last_good = outcome  # only once shown: a failure says what is on screen

    def _shown(self, outcome: PollOutcome, began: float) -> None:
        painted = time.perf_counter() - began
        self.timings.append((outcome.seconds, painted))
        if self._poll_again:
            self.poll_now()
        elif not self.frozen and self._timer is None and not self._polling:
            self._timer = self.set_timer(self.next_delay(outcome.seconds + painted),
                                         self._timed_poll)

    def _timed_poll(self) -> None:
        self.poll_now(timed=True)

    def next_delay(self, busy: float) -> float:
        """The refresh interval, stretched so that reading and painting stay under 20%.

        Never stretched past five seconds (or the interval, when that is longer).
        """
        self.delay = min(max(self.refresh_seconds, busy * 5),
                         max(self.refresh_seconds, MAX_STRETCH))
        return self.delay

    def status_forms(self, outcome: PollOutcome) -> tuple[str, ...]:
        """The status line from its widest form to its narrowest (markup: paths and errors escaped).

        Narrower forms drop the least telling parts first (timings, the path's
        folders); the refresh state, read-only and the database's name stay. A
        problem keeps its error, and what data is shown goes before it.
        """
        if outcome.error is not None:
            since = stamp(self._down_since, outcome.at)
            shown = (f"; showing data from {stamp(self.last_good.at, outcome.at)}"
                     if self.last_good is not None else "")
            error = safe(outcome.error)
            if outcome.bug:
                where = safe(str(self.errors.path))
                return (f"dashboard error (a bug, not the database) since {since}: "
                        f"{error}; traceback in {where}{shown}",)
            return (f"database unavailable since {since}: {error} "
                    f"(retrying every {self.refresh_seconds:g}s){shown}",
                    f"database unavailable since {since}{shown}: {error}")
        slowed = not self.frozen and self.delay > self.refresh_seconds + 0.05
        if self.frozen:
            state = short_state = "FROZEN (z resumes)"
        else:
            state = short_state = f"every {self.refresh_seconds:g}s"
        if slowed:
            state += f" (slowed to {self.delay:.1f}s: the machine is busy)"
            short_state += f" (slowed to {self.delay:.1f}s)"
        mode = "  read-only" if self.read_only else ""
        at = stamp(outcome.at, outcome.at)
        took = f" in {outcome.seconds * 1000:.0f} ms"
        path = str(self.source.path)
        names = [path, *path_tails(path)]
        forms = [f"updated {at}{took}, {state}{mode}  {safe(path)}",
                 f"updated {at}, {short_state}{mode}  {safe(path)}"]
        forms += [f"updated {at}, {short_state}{mode}  {safe(name)}" for name in names[1:]]
        forms += [f"{at} {short_state}{mode}  {safe(name)}" for name in names[-1:]]
        return tuple(forms)

    def tabs(self, outcome: PollOutcome) -> list[tuple[str, str, str, str]]:
        """(key, title, count, mode) for every screen of the registry.

        While the database is unreadable the last good counts stay.
        """
        counts = outcome.counts or (self.last_good.counts if self.last_good else None)
        return [(str(number), cls.TITLE, cls.tab_count(counts) if counts is not None else "",
                 cls.MODE) for number, cls in enumerate(SCREENS, 1)]

    def on_unmount(self) -> None:
        self.source.close()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Show a toast; its text is shown as is, never parsed as markup.

        Messages carry what the database or the user gave (queue and schedule
        names, error messages, a filter as typed): a ``[/]`` in them must not
        close the dashboard. Screens' ``notify`` asks for markup; it is refused.
        """
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    # -- writes --------------------------------------------------------------

    def run_write(self, done: str, fn: Callable[..., Any], *args: Any, refused: str) -> None:
        """Run ``fn(store, *args)`` from :mod:`runner.control` in a thread, then refresh.

        ``done`` is the message on success; ``refused`` leads the reason on failure.
        """
        if self.read_only:
            self.notify("read-only: actions are off", severity="warning")
            return
        self._write(done, refused, fn, args)

    @work(thread=True, group="write", exit_on_error=False)
    def _write(self, done: str, refused: str, fn: Callable[..., Any],
               args: tuple[Any, ...]) -> None:
        try:
            with self.source.writing() as store:
                result = fn(store, *args)
        except Exception as exc:  # noqa: BLE001 - refused actions are shown, not raised
            self.call_from_thread(self.notify, f"{refused}: {exc}", severity="error",
                                  timeout=8)
        else:
            text = done if result is None else f"{done}: {result}"
            self.call_from_thread(self.notify, text)
        self.call_from_thread(self._written)

    def _written(self) -> None:
        screen = self.data_screen()
        if screen is not None:
            screen.after_write()
        self.poll_now()

    # -- keys ----------------------------------------------------------------

    async def action_show_screen(self, mode: str) -> None:
        await self.switch_mode(mode)
        self.poll_now()

    def action_write_refused(self, key: str) -> None:
        """A write key whose action is disabled: say why instead of doing nothing."""
        screen = self.data_screen()
        if self.read_only and screen is not None and screen.writes_on(key):
            self.notify(f"read-only: actions are off ({self.source.read_only_reason})",
                        severity="warning")

    def action_refresh_now(self) -> None:
        self.poll_now()

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        if self.frozen:
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self.notify("refresh frozen (z resumes)")
            screen = self.data_screen()
            if screen is not None and self.last is not None:
                screen.show_status(self.status_forms(self.last), problem=False)
        else:
            self.poll_now()

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        screen = self.data_screen()
        keys = list(getattr(screen, "HELP", [])) if screen is not None else []
        title = screen.TITLE if screen is not None else "Dashboard"
        self.push_screen(HelpScreen(title, keys, read_only=self.read_only))


def make_app(*, db: str | Path | None = None, settings: str | Path | None = None,
             read_only: bool = False, refresh: float | None = None,
             clock: Callable[[], float] = time.time,
             error_log: str | Path | None = None) -> DashboardApp:
    """Build the dashboard from a database path or a settings file (tests and ``__main__``).

    Raises:
        ConfigError: the settings file is invalid.
    """
    options = DatabaseSection(busy_timeout=2.0, write_deadline=5.0)
    every = refresh
    environ = service_environment().environ
    loaded = (load_settings(settings, environ)
              if settings is not None or db is None else None)
    reason = "--read-only"
    if loaded is not None:
        options = loaded.database
        if every is None:
            every = loaded.tui.refresh
        if not loaded.tui.actions and not read_only:
            read_only, reason = True, "[tui] actions = false"
    if db is not None:
        where: str | Path = str(db) if is_url(str(db)) else Path(db)
    else:
        assert loaded is not None
        where = (loaded.runner.database if is_url(loaded.runner.database)
                 else redis_url(loaded) if loaded.worker.queue_type == "redis"
                 else loaded.database_path)
    source = DataSource(where, options, read_only=read_only, read_only_reason=reason)
    # With --db alone no settings are read, but this host's workers are still named by
    # the service's RUNNER_NODE_NAME: the workers table tells a killed one by it.
    return DashboardApp(source, refresh_seconds=every or DEFAULT_REFRESH, clock=clock,
                        settings=loaded, error_log=Path(error_log) if error_log else None,
                        node_name=environ.get("RUNNER_NODE_NAME", "").strip() or None)
