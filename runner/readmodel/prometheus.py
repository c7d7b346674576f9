"""Snapshots as Prometheus text exposition format (0.0.4).

Names follow Prometheus' conventions: counters end in ``_total`` and never go
down (they are kept in the database, see :mod:`runner.counters`), times are in
``_seconds``, sizes in ``_bytes``, shares are ratios from 0 to 1, and
``jobrunner_build_info`` carries the version as labels.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.readmodel.scrape import COUNT_LIMIT, BuildInfo, DatabaseSnapshot, WorkerSnapshot
from runner.store.states import JobState
from runner.store.views import BUCKETS

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[str, dict[str, str], float]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if isinstance(value, float):
        if value == float("inf"):
            return "+Inf"
        return repr(value)
    return str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, helptext: str, samples: Iterable[Sample]) -> None:
        rows = list(samples)
        if not rows:
            return
        self.lines.append(f"# HELP {name} {helptext}")
        self.lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in rows:
            self.lines.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n" if self.lines else ""


_COUNTERS = (
    ("enqueued", "Jobs enqueued."),
    (JobState.COMPLETED.value, "Jobs completed without error."),
    ("failed", "Failed attempts (an error, a timeout or a worker crash), retried or not."),
    ("retried", "Failed attempts followed by another attempt."),
    (JobState.DEAD.value, "Jobs that failed for good."),
    (JobState.CANCELLED.value, "Jobs cancelled, discarded or expired before they finished."),
)


def render_database(snapshot: DatabaseSnapshot, build: BuildInfo | None = None) -> str:
    """The database-wide series (serve them from one place only)."""
    w = _Writer()
    if build is not None:
        _build_info(w, build)
    for column, helptext in _COUNTERS:
        w.family(f"jobrunner_jobs_{column}_total", "counter", helptext,
                 [("", {"task": t.task, "queue": t.queue}, getattr(t, column))
                  for t in snapshot.totals])
    histogram: list[Sample] = []
    for t in snapshot.totals:
        labels = {"task": t.task, "queue": t.queue}
        for le, count in zip(BUCKETS, t.buckets, strict=True):
            histogram.append(("_bucket", {**labels, "le": _number(float(le))}, count))
        histogram.append(("_bucket", {**labels, "le": "+Inf"}, t.completed))
        histogram.append(("_sum", labels, t.duration_sum))
        histogram.append(("_count", labels, t.completed))
    w.family("jobrunner_job_duration_seconds", "histogram",
             "Processing time of completed jobs.", histogram)
    limit = f"(counted up to {COUNT_LIMIT})"
    queues = snapshot.queues
    w.family("jobrunner_queue_due_jobs", "gauge",
             f"Waiting jobs whose time has come: the backlog {limit}.",
             [("", {"queue": q.queue}, q.due) for q in queues])
    w.family("jobrunner_queue_scheduled_jobs", "gauge",
             f"Waiting jobs due later: delayed, or retrying after a backoff {limit}.",
             [("", {"queue": q.queue}, q.scheduled) for q in queues])
    w.family("jobrunner_queue_running_jobs", "gauge",
             "Jobs claimed by a worker: running, or prefetched for a free thread.",
             [("", {"queue": q.queue}, q.running) for q in queues])
    w.family("jobrunner_queue_oldest_waiting_seconds", "gauge",
             "How long the oldest due job of the queue has waited (0 when none waits).",
             [("", {"queue": q.queue}, q.oldest_waiting_seconds) for q in queues])
    w.family("jobrunner_queue_rejected_total", "counter",
             "Jobs refused because their queue was full (on_full reject, or block past its "
             "block_timeout).",
             [("", {"queue": q}, r) for q, (r, _) in snapshot.backpressure.items()])
    w.family("jobrunner_queue_dropped_total", "counter",
             "Waiting jobs cancelled to make room in a full queue (on_full drop_oldest).",
             [("", {"queue": q}, d) for q, (_, d) in snapshot.backpressure.items()])
    w.family("jobrunner_queue_paused", "gauge",
             "1 while the queue is paused (workers claim none of its jobs).",
             [("", {"queue": q}, int(p)) for q, p in snapshot.paused_queues.items()])
    w.family("jobrunner_dead_jobs", "gauge", f"Jobs in the dead state now {limit}.",
             [("", {}, snapshot.dead)])
    w.family("jobrunner_workers", "gauge", "Worker processes with a fresh heartbeat.",
             [("", {}, snapshot.workers)])
    w.family("jobrunner_schedule_lag_seconds", "gauge",
             "How late each active schedule's due fire is (0 when on time).",
             [("", {"schedule": n}, lag) for n, lag in snapshot.schedule_lags.items()])
    return w.text()


def _build_info(w: _Writer, build: BuildInfo) -> None:
    w.family("jobrunner_build_info", "gauge", "Version of jobrunner and Python; always 1.",
             [("", {"version": build.version, "python": build.python}, 1)])


def render_worker(snapshot: WorkerSnapshot, build: BuildInfo) -> str:
    """This worker process's own series, labelled with its host and configured name."""
    w = _Writer()
    _build_info(w, build)
    p = snapshot.process
    w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent "
             "in seconds.", [("", {}, p.cpu_seconds)])
    w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
             [("", {}, p.resident_bytes)])
    w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
             [("", {}, p.virtual_bytes)])
    w.family("process_start_time_seconds", "gauge",
             "Start time of the process since unix epoch in seconds.", [("", {}, p.start_time)])
    if p.open_fds is not None:
        w.family("process_open_fds", "gauge", "Number of open file descriptors.",
                 [("", {}, p.open_fds)])
    if p.max_fds is not None:
        w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.",
                 [("", {}, p.max_fds)])
    me = {"host": snapshot.host, "worker": snapshot.name}
    w.family("jobrunner_worker_threads", "gauge", "Worker threads of this process.",
             [("", me, snapshot.threads)])
    w.family("jobrunner_worker_running_jobs", "gauge", "Jobs this process is running now.",
             [("", me, snapshot.running)])
    w.family("jobrunner_worker_prefetched_jobs", "gauge",
             "Jobs claimed ahead, waiting in this process for a free thread.",
             [("", me, snapshot.prefetched)])
    if snapshot.last_heartbeat is not None:
        w.family("jobrunner_worker_last_heartbeat_timestamp_seconds", "gauge",
                 "When this worker last wrote its heartbeat to the database (unix time).",
                 [("", me, snapshot.last_heartbeat)])
    if snapshot.cpu_ratio is not None:
        w.family("jobrunner_worker_cpu_ratio", "gauge",
                 "CPU used over the last heartbeat interval, as a share of one core.",
                 [("", me, snapshot.cpu_ratio)])
    w.family("jobrunner_worker_paused", "gauge",
             "1 while this worker holds its claims (disk full, memory limit).",
             [("", me, int(snapshot.paused))])
    w.family("jobrunner_worker_exporter", "gauge",
             "1 when this worker also serves the database-wide series.",
             [("", me, int(snapshot.exporter))])
    return w.text()
