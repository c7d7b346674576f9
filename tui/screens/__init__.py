"""The screen registry: one line per top-level screen, in tab order (keys 1, 2, ...).

Adding a screen is one new module with a :class:`DataScreen` subclass and one
line here; the app builds its modes, number keys and tabs from this tuple.
"""

from __future__ import annotations

from tui.screens.base import DataScreen
from tui.screens.events import EventsScreen
from tui.screens.failures import FailuresScreen
from tui.screens.jobs import JobsScreen
from tui.screens.logs import LogsScreen
from tui.screens.overview import OverviewScreen
from tui.screens.queues import QueuesScreen
from tui.screens.schedules import SchedulesScreen

SCREENS: tuple[type[DataScreen], ...] = (
    OverviewScreen,
    JobsScreen,
    FailuresScreen,
    SchedulesScreen,
    EventsScreen,
    LogsScreen,
    QueuesScreen,
)
