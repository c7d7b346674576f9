"""The health verdict as the dashboard shows it: the same decision as ``runner health``.

:func:`runner.readmodel.health.evaluate` decides; this module only reads its facts
cheaply enough for every refresh (index seeks instead of the CLI's full
per-queue aggregate, no ``quick_check``: a damaged file already fails the
dashboard's own reads).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.clock_drift import drift_limit
from runner.config import Settings
from runner.readmodel.dashboard import has_table, oldest_due_by_queue
from runner.readmodel.health import (
    HealthReport,
    evaluate,
    facts_from,
    health_settings,
    heartbeat_limit,
    paused_queues,
)
from runner.readmodel.metrics import schedule_lags
from runner.store.backend import Store
from runner.store.server_clock import ServerClock


@dataclass(frozen=True)
class HealthLimits:
    """The ``[health]`` thresholds, resolved once from the settings."""

    heartbeat_max_age: float
    max_waiting_age: float
    max_schedule_lag: float
    max_clock_drift: float = 0.0
    node_name: str | None = None
    """The name this host's workers register under (``[runner] node_name``), None for
    the host name: a worker of this node whose process is gone is known dead."""


def health_limits(settings: Settings | None, *, node_name: str | None = None) -> HealthLimits:
    """The thresholds ``python -m runner health`` would use with these settings;
    ``node_name`` when no settings were loaded (the service's ``RUNNER_NODE_NAME``).

    Raises:
        ConfigError: the ``[health]`` table is invalid.
    """
    chosen = settings or Settings()
    section = health_settings(chosen)
    return HealthLimits(heartbeat_limit(chosen, section), section.max_waiting_age,
                        section.max_schedule_lag, drift_limit(chosen.worker),
                        chosen.runner.node_name or node_name or None)


def health_verdict(store: Store, limits: HealthLimits, now: float | None = None
                   ) -> HealthReport:
    """``ok``, or the first reason the runner is unhealthy."""
    # Heartbeats are aged, and waiting jobs and schedule slots timed, by the server's
    # clock: the host asking may be off it.
    at = ServerClock(store).now() if now is None else now
    waiting = {queue: at - oldest for queue, oldest in oldest_due_by_queue(store, at)
               if oldest is not None}
    lags = schedule_lags(store, at) if has_table(store, "runner_schedule") else None
    facts = facts_from(store.list_workers(), waiting, lags, at, held=paused_queues(store),
                       heartbeat_max_age=limits.heartbeat_max_age, node=limits.node_name)
    return evaluate(facts, heartbeat_max_age=limits.heartbeat_max_age,
                    max_waiting_age=limits.max_waiting_age,
                    max_schedule_lag=limits.max_schedule_lag,
                    max_clock_drift=limits.max_clock_drift)
