"""Schedules as the store takes and returns them, the same for every backend."""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.store.job_rows import NewJob


def unique_held(holder: str) -> str:
    """Why a slot was skipped: its run's unique key is held by the live job ``holder``
    (the Redis function writes the same words)."""
    return f"unique: job {holder} holds its key"


@dataclass(frozen=True)
class ScheduleRow:
    """A schedule as stored, with the state of its last job."""

    name: str
    task: str
    expression: str
    tz: str
    misfire: str
    overlap: str
    next_fire_at: float | None
    last_slot_at: float | None
    last_fired_at: float | None
    last_lag: float | None
    last_job_id: str | None
    enabled: bool
    paused: bool
    orphaned: bool
    skip_next: bool
    fired: int
    skipped: int
    last_skip_at: float | None
    last_skip_reason: str | None
    created_at: float
    updated_at: float
    last_outcome: str | None
    """State of the last job (``completed``, ``dead``, ...), None before the first run."""


@dataclass(frozen=True)
class RunRow:
    """One fired slot."""

    schedule: str
    slot: float
    manual: bool
    fired_at: float
    job_id: str | None
    outcome: str

    @property
    def lag(self) -> float:
        """Seconds between the planned slot and the actual firing."""
        return self.fired_at - self.slot


@dataclass(frozen=True)
class SyncItem:
    """A schedule definition as written at scheduler start."""

    name: str
    task: str
    expression: str
    tz: str
    misfire: str
    overlap: str
    enabled: bool
    next_fire_at: float
    """Used for a new row, or when the expression, zone or enabled state changes."""


@dataclass
class FirePlan:
    """What a scheduler wants to do for one due schedule (built outside the transaction)."""

    name: str
    expected: float
    """``next_fire_at`` as read; the compare-and-set fails if another scheduler moved it."""
    next_fire_at: float
    slots: list[float]
    """Slots to run, oldest first (after the misfire policy)."""
    jobs: list[NewJob]
    """One job per slot."""
    overlap: str
    dropped: int = 0
    """Missed slots the misfire policy dropped."""


@dataclass
class FireResult:
    """What one compare-and-set achieved."""

    name: str
    won: bool
    fired_at: float = 0.0
    enqueued: list[tuple[float, str]] = field(default_factory=list)
    skipped: list[tuple[float, str]] = field(default_factory=list)
