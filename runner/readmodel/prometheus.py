"""A metrics :class:`~runner.metrics.Snapshot` as Prometheus text exposition format (0.0.4).

Window figures ("last hour") are gauges: they are read back from the jobs
table, so they fall as well as rise; use them directly rather than ``rate()``.
"""

from __future__ import annotations

from collections.abc import Iterable

from runner.readmodel.metrics import Snapshot, Throughput

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, helptext: str,
               samples: Iterable[tuple[str, dict[str, str], float]]) -> None:
        rows = list(samples)
        if not rows:
            return
        self.lines.append(f"# HELP {name} {helptext}")
        self.lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in rows:
            self.lines.append(f"{name}{suffix}{_labels(labels)} {_number(value)}")


def _window_samples(rows: list[tuple[dict[str, str], Throughput]]
                    ) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    out: dict[str, list[tuple[str, dict[str, str], float]]] = {
        "completed": [], "failed": [], "retries": [], "died": [], "error": [], "duration": [],
        "last_minute": []}
    for labels, s in rows:
        out["completed"].append(("", labels, s.completed))
        out["failed"].append(("", labels, s.failed))
        out["retries"].append(("", labels, s.retries))
        out["died"].append(("", labels, s.died))
        out["last_minute"].append(("", labels, s.completed_per_minute[-1]))
        if s.error_rate is not None:
            out["error"].append(("", labels, s.error_rate))
        if s.durations is not None:
            for q, v in zip(("0.5", "0.95", "0.99"), s.durations, strict=True):
                out["duration"].append(("", {**labels, "quantile": q}, v))
            out["duration"].append(("_sum", labels, s.duration_sum))
            out["duration"].append(("_count", labels, s.duration_count))
    return out


def render(snapshot: Snapshot) -> str:
    """The exposition text, ending with a newline."""
    w = _Writer()
    w.family("jobrunner_jobs", "gauge", "Jobs by queue and state.",
             [("", {"queue": q.queue, "state": state}, n)
              for q in snapshot.queues for state, n in q.states.items()])
    w.family("jobrunner_queue_oldest_waiting_seconds", "gauge",
             "Age of the oldest due waiting job per queue.",
             [("", {"queue": q.queue}, q.oldest_waiting_age) for q in snapshot.queues
              if q.oldest_waiting_age is not None])
    w.family("jobrunner_task_dead_jobs", "gauge", "Jobs in the dead state per task.",
             [("", {"task": t.task, "queue": t.queue}, t.dead) for t in snapshot.tasks])
    minutes = int(snapshot.window // 60)
    for scope, rows in (
            ("task", [({"task": t.task, "queue": t.queue}, t.stats) for t in snapshot.tasks]),
            ("queue", [({"queue": q.queue}, q.stats) for q in snapshot.queues])):
        s = _window_samples(rows)
        prefix = f"jobrunner_{scope}"
        window = f"over the last {minutes} minutes"
        w.family(f"{prefix}_completed_window", "gauge", f"Completed jobs {window}.",
                 s["completed"])
        w.family(f"{prefix}_completed_last_minute", "gauge",
                 "Completed jobs in the current minute.", s["last_minute"])
        w.family(f"{prefix}_failed_attempts_window", "gauge", f"Failed attempts {window}.",
                 s["failed"])
        w.family(f"{prefix}_retries_window", "gauge",
                 f"Failed attempts followed by a retry {window}.", s["retries"])
        w.family(f"{prefix}_died_window", "gauge", f"Jobs that went dead {window}.", s["died"])
        w.family(f"{prefix}_error_ratio", "gauge",
                 f"Failed attempts / (completed + failed) {window}.", s["error"])
        w.family(f"{prefix}_duration_seconds", "summary",
                 f"Processing time of jobs completed {window}.", s["duration"])
    if snapshot.schedule_lags:
        w.family("jobrunner_schedule_lag_seconds", "gauge",
                 "How late each schedule's due fire is.",
                 [("", {"schedule": n}, lag) for n, lag in snapshot.schedule_lags.items()])
    workers = snapshot.workers
    w.family("jobrunner_workers", "gauge", "Running worker processes.",
             [("", {}, len(workers))])
    w.family("jobrunner_worker_heartbeat_age_seconds", "gauge",
             "Seconds since each worker's last heartbeat.",
             [("", {"worker": x.id}, x.heartbeat_age) for x in workers])
    w.family("jobrunner_worker_rss_bytes", "gauge", "Resident memory of each worker.",
             [("", {"worker": x.id}, x.rss_bytes) for x in workers if x.rss_bytes is not None])
    w.family("jobrunner_worker_cpu_percent", "gauge", "CPU use of each worker.",
             [("", {"worker": x.id}, x.cpu_percent) for x in workers
              if x.cpu_percent is not None])
    w.family("jobrunner_worker_running_jobs", "gauge", "Jobs each worker is running.",
             [("", {"worker": x.id}, x.running) for x in workers])
    return "\n".join(w.lines) + "\n"
