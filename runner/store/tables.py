"""The tables of the jobs database, defined once as peewee models.

SQLite and PostgreSQL share these definitions; each dialect gets its
``CREATE TABLE`` from peewee. Indexes stay hand-written per dialect in
:mod:`runner.store.sqlite.models` (partial indexes the hot statements name with
``INDEXED BY``), and so do the hot statements themselves
(:mod:`runner.store.sqlite.transitions`). Defaults are SQL defaults, so rows written
by plain SQL get them too.
"""

from __future__ import annotations

from collections.abc import Iterable

import peewee as pw

from runner.store.rows import JobRow
from runner.store.states import FINAL, LIVE, JobState, WorkerState, sql_is
from runner.store.views import BUCKETS

#: Bound to no database: the models describe the schema; the driver is runner.store.sqlite.db's.
schema_database = pw.SqliteDatabase(None)


def _default(sql: str) -> list[pw.SQL]:
    return [pw.SQL(f"DEFAULT {sql}")]


def _one_of(column: str, values: Iterable[str]) -> pw.SQL:
    """``CHECK`` that ``column`` holds one of ``values``, spelled as comparisons.

    SQLite evaluates an IN list of more than two constants by building a
    temporary B-tree of it, for every row written; comparisons cost nothing.
    """
    return pw.SQL("CHECK (" + " OR ".join(f"{column} = '{v}'" for v in values) + ")")


class _Table(pw.Model):
    class Meta:
        database = schema_database
        legacy_table_names = False


class Meta(_Table):
    key = pw.TextField(primary_key=True)
    value = pw.TextField()

    class Meta:
        table_name = "runner_meta"


class Job(_Table):
    id = pw.TextField(primary_key=True)
    task = pw.TextField()
    queue = pw.TextField(constraints=_default("'default'"))
    priority = pw.IntegerField(constraints=_default("0"))
    state = pw.TextField()
    data = pw.BlobField()
    args = pw.TextField(null=True)
    attempt = pw.IntegerField(constraints=_default("0"))
    max_attempts = pw.IntegerField(constraints=_default("1"))
    run_at = pw.FloatField()
    created_at = pw.FloatField()
    started_at = pw.FloatField(null=True)
    finished_at = pw.FloatField(null=True)
    lease_owner = pw.TextField(null=True)
    lease_expires_at = pw.FloatField(null=True)
    crashes = pw.IntegerField(constraints=_default("0"))
    failures = pw.IntegerField(constraints=_default("0"))
    first_failed_at = pw.FloatField(null=True)
    last_failed_at = pw.FloatField(null=True)
    error_type = pw.TextField(null=True)
    error_message = pw.TextField(null=True)
    last_error = pw.TextField(null=True)
    reason = pw.TextField(null=True)
    progress_done = pw.FloatField(null=True)
    progress_total = pw.FloatField(null=True)
    progress_message = pw.TextField(null=True)
    unique_key = pw.TextField(null=True)
    event_id = pw.TextField(null=True)
    schedule = pw.TextField(null=True)
    concurrency_key = pw.TextField(null=True)
    """The task's ``concurrency_key`` of the job's arguments (per-key concurrency)."""
    parked = pw.TextField(null=True)
    """Set on a waiting job its task's or key's concurrency limit holds back: the group
    that holds it (``runner.store.parking``); claims do not read it until that group has
    room again. NULL for every other job."""

    class Meta:
        table_name = "runner_job"
        constraints = [_one_of("state", (s.value for s in (*LIVE, *FINAL)))]


class JobError(_Table):
    """One row per failed attempt: the timeline and every traceback."""

    id = pw.AutoField()
    job_id = pw.TextField()
    attempt = pw.IntegerField()
    kind = pw.TextField()
    error_type = pw.TextField(null=True)
    message = pw.TextField(null=True)
    traceback = pw.TextField(null=True)
    worker = pw.TextField(null=True)
    started_at = pw.FloatField(null=True)
    failed_at = pw.FloatField()

    class Meta:
        table_name = "runner_job_error"


class KeyValue(_Table):
    """huey's key/value store: results, revocations, locks."""

    key = pw.TextField(primary_key=True)
    value = pw.BlobField()
    expires_at = pw.FloatField(null=True)
    #: When the value was written, by the store's clock (NULL: before this was kept): a
    #: revocation is cleared only by a worker that decided to after it was written.
    written_at = pw.FloatField(null=True)

    class Meta:
        table_name = "runner_kv"


class Counter(_Table):
    key = pw.TextField(primary_key=True)
    value = pw.IntegerField(constraints=_default("0"))

    class Meta:
        table_name = "runner_counter"


class FlowState(_Table):
    """State of flow control shared by every worker: token buckets, queue turns."""

    key = pw.TextField(primary_key=True)
    value = pw.FloatField()
    updated_at = pw.FloatField()

    class Meta:
        table_name = "runner_flow"


class Schedule(_Table):
    """Periodic schedules: one row each; firing is a compare-and-set on next_fire_at."""

    name = pw.TextField(primary_key=True)
    task = pw.TextField()
    expression = pw.TextField()
    tz = pw.TextField()
    misfire = pw.TextField()
    overlap = pw.TextField()
    next_fire_at = pw.FloatField(null=True)
    last_slot_at = pw.FloatField(null=True)
    last_fired_at = pw.FloatField(null=True)
    last_lag = pw.FloatField(null=True)
    last_job_id = pw.TextField(null=True)
    enabled = pw.IntegerField(constraints=_default("1"))
    paused = pw.IntegerField(constraints=_default("0"))
    orphaned = pw.IntegerField(constraints=_default("0"))
    skip_next = pw.IntegerField(constraints=_default("0"))
    fired = pw.IntegerField(constraints=_default("0"))
    skipped = pw.IntegerField(constraints=_default("0"))
    last_skip_at = pw.FloatField(null=True)
    last_skip_reason = pw.TextField(null=True)
    created_at = pw.FloatField()
    updated_at = pw.FloatField()

    class Meta:
        table_name = "runner_schedule"


class ScheduleRun(_Table):
    """One row per fired slot: UNIQUE keeps a slot from ever firing twice."""

    id = pw.AutoField()
    schedule = pw.TextField()
    slot = pw.FloatField()
    manual = pw.IntegerField(constraints=_default("0"))
    fired_at = pw.FloatField()
    job_id = pw.TextField(null=True)
    outcome = pw.TextField()

    class Meta:
        table_name = "runner_schedule_run"
        constraints = [pw.SQL("UNIQUE (schedule, slot, manual)")]


class Worker(_Table):
    """Every run.py process: liveness, resources and what it serves."""

    id = pw.TextField(primary_key=True)
    host = pw.TextField()
    pid = pw.IntegerField()
    started_at = pw.FloatField()
    heartbeat_at = pw.FloatField()
    stopped_at = pw.FloatField(null=True)
    state = pw.TextField(constraints=_default(sql_is(WorkerState.RUNNING)))
    concurrency = pw.IntegerField(constraints=_default("0"))
    queues = pw.TextField(null=True)
    rss_bytes = pw.IntegerField(null=True)
    cpu_percent = pw.FloatField(null=True)
    running = pw.IntegerField(constraints=_default("0"))
    processed = pw.IntegerField(constraints=_default("0"))
    status = pw.TextField(null=True)
    clock_offset = pw.FloatField(null=True)

    class Meta:
        table_name = "runner_worker"


class Event(_Table):
    """One row per emit; handler outcomes are the jobs linked by event_id."""

    id = pw.TextField(primary_key=True)
    name = pw.TextField()
    data = pw.TextField()
    key = pw.TextField(null=True)
    emitted_at = pw.FloatField()
    source = pw.TextField(null=True)
    status = pw.TextField(constraints=_default("'pending'"))
    dispatched_at = pw.FloatField(null=True)
    dispatch_job = pw.TextField(null=True)
    handlers = pw.IntegerField(constraints=_default("0"))
    deliveries = pw.IntegerField(constraints=_default("0"))

    class Meta:
        table_name = "runner_event"
        constraints = [_one_of("status", ("pending", "dispatched", "unhandled"))]


class Log(_Table):
    """Log records: those emitted inside a job (job_id set) and the worker's own."""

    id = pw.AutoField()
    created_at = pw.FloatField()
    level = pw.IntegerField()
    logger = pw.TextField()
    message = pw.TextField()
    job_id = pw.TextField(null=True)
    task = pw.TextField(null=True)
    worker = pw.TextField(null=True)

    class Meta:
        table_name = "runner_log"


def _count() -> pw.IntegerField:
    return pw.IntegerField(constraints=_default("0"))


class JobTotal(_Table):
    """Lifetime counters per task and queue (what a Prometheus scrape reads).

    ``failed`` counts failed attempts; ``le0``... are the cumulative buckets of
    the completion time histogram, one per bound of ``BUCKETS``.
    """

    task = pw.TextField()
    queue = pw.TextField()
    enqueued = _count()
    completed = _count()
    failed = _count()
    retried = _count()
    dead = _count()
    cancelled = _count()
    duration_sum = pw.FloatField(constraints=_default("0"))

    class Meta:
        table_name = "runner_job_total"
        primary_key = pw.CompositeKey("task", "queue")


for _bucket in range(len(BUCKETS)):
    JobTotal._meta.add_field(f"le{_bucket}", _count())
# Not a total: on a queue's row (task ''), the jobs of that queue waiting now, which a
# queue bound reads (last, where a migration's ALTER TABLE puts it).
JobTotal._meta.add_field("waiting", _count())

assert {JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED} <= set(JobTotal._meta.fields)


class Lease(_Table):
    """Named leases: one holder at a time, taken over once expired (the metrics exporter)."""

    name = pw.TextField(primary_key=True)
    owner = pw.TextField()
    expires_at = pw.FloatField()

    class Meta:
        table_name = "runner_lease"


class Pause(_Table):
    """Paused (or explicitly resumed) queues and tasks; the claim skips the paused ones.

    A row with ``paused = 0`` records a resume, so a ``[queues.NAME] paused``
    setting seeds the state only where no one has chosen it yet.
    """

    kind = pw.TextField()
    name = pw.TextField()
    paused = pw.IntegerField(constraints=_default("1"))
    changed_at = pw.FloatField()
    changed_by = pw.TextField(null=True)

    class Meta:
        table_name = "runner_pause"
        primary_key = pw.CompositeKey("kind", "name")
        constraints = [pw.SQL("CHECK (kind IN ('queue','task'))")]


class CancelRequest(_Table):
    """A running job someone asked to cancel; its worker stops it and settles it cancelled."""

    job_id = pw.TextField(primary_key=True)
    attempt = pw.IntegerField()
    requested_at = pw.FloatField()
    requested_by = pw.TextField()

    class Meta:
        table_name = "runner_cancel"


class Room(_Table):
    """Room made in a concurrency limit that holds parked jobs: per group (a task's
    limit, or one key's), the slots freed since a claim last let its parked jobs out
    (``runner.store.parking``)."""

    task = pw.TextField()
    grp = pw.TextField()
    slots = pw.IntegerField(constraints=_default("0"))

    class Meta:
        table_name = "runner_room"
        primary_key = pw.CompositeKey("task", "grp")


class QueueTotal(_Table):
    """Lifetime backpressure counters per queue: enqueues refused and jobs dropped."""

    queue = pw.TextField(primary_key=True)
    rejected = pw.IntegerField(constraints=_default("0"))
    dropped = pw.IntegerField(constraints=_default("0"))

    class Meta:
        table_name = "runner_queue_total"


#: Every table, in the order they are created.
TABLES: list[type[pw.Model]] = [Meta, Job, JobError, KeyValue, Counter, FlowState,
                                Schedule, ScheduleRun, Worker, Event, Log, JobTotal, Lease,
                                Pause, CancelRequest, QueueTotal, Room]
#: Tables SQLite keeps without a rowid (a row is looked up by its whole primary key only).
WITHOUT_ROWID: frozenset[type[pw.Model]] = frozenset({JobTotal})


def create_table_sql(model: type[pw.Model], database: pw.Database = schema_database) -> str:
    """The dialect's ``CREATE TABLE IF NOT EXISTS`` for one model."""
    context = model._schema._create_table(safe=True)
    sql, params = database.get_sql_context().sql(context).query()
    assert not params, sql
    if model in WITHOUT_ROWID and isinstance(database, pw.SqliteDatabase):
        sql += " WITHOUT ROWID"
    return sql


def job_columns(table: str = "runner_job") -> str:
    """The select list of a :class:`JobRow`, in its order, read from ``table``
    (``runner_job``, or a derived table of its :data:`STORED_JOB_COLUMNS`).

    ``requested`` is not stored: it counts the job's recorded attempts of kind
    ``retry`` (asked for by the task), read only for a job with recorded failures
    (each such attempt is one), so a listing of jobs that never failed reads no more.
    """
    return ", ".join(requested_sql(table) if name == "requested" else f"{table}.{name}"
                     for name in JobRow.__dataclass_fields__)


def requested_sql(table: str = "runner_job") -> str:
    """How many attempts of the job of ``table``'s row its task asked for (``retry`` records).

    A job given more attempts by hand, or enqueued again, is allowed ``attempt + N -``
    this: the asked-for attempts stay apart from those its new allowance counts, as
    :func:`runner.store.rows.attempt_text` shows them.
    """
    return (f"CASE WHEN {table}.failures > 0 THEN (SELECT count(*) FROM runner_job_error "
            f"e WHERE e.job_id = {table}.id AND e.kind = 'retry') ELSE 0 END")


#: The columns of a :class:`JobRow` that ``runner_job`` stores (all but ``requested``).
STORED_JOB_COLUMNS = ", ".join(n for n in JobRow.__dataclass_fields__ if n != "requested")
