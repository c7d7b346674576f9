"""Scrape benchmark: the cost of ``/metrics`` at 1,000 and at 1,000,000 jobs.

    .venv/bin/python bench/bench_metrics.py [--big 1000000] [--small 1000] [--scrapes 40]

Two databases are filled alike (20 tasks on 4 queues; 1% waiting, 1% dead,
the rest completed within the last hour, the worst case for window figures),
then a real worker (``run.py``, ``[metrics] database = "always"``) serves each
and its ``/metrics`` is fetched over HTTP, alternating small and big, medians
compared. The target: under 50 ms, and the big database within 2x of the
small one. For reference the window figures of ``python -m runner stats``
(whose cost grows with the last hour's jobs) are timed on the same files.
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import python, spawn, stop, wait_until  # noqa: E402
from runner.config import DatabaseSection  # noqa: E402
from runner.readmodel import metrics  # noqa: E402
from runner.store.sqlite.counters import BUCKETS  # noqa: E402
from runner.store.sqlite.db import Database  # noqa: E402
from runner.store.sqlite.models import create_schema  # noqa: E402

SETTINGS = """
[runner]
database = "{db}"
imports = ["bench.core_tasks"]
[worker]
max_concurrent_tasks = 4
log_level = "WARNING"
[metrics]
listen = "127.0.0.1:{port}"
database = "always"
[retention]
enabled = false
"""

TASKS = [f"bench.task_{i:02d}" for i in range(20)]
QUEUES = ["default", "mail", "reports", "slow"]


def fill(path: Path, jobs: int) -> None:
    """Write ``jobs`` rows and the counters a workload like it would have left."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    create_schema(conn)
    now = time.time()
    rows = []
    for n in range(jobs):
        task, queue = TASKS[n % len(TASKS)], QUEUES[n % len(QUEUES)]
        kind = n % 100
        state = "available" if kind == 0 else "dead" if kind == 1 else "completed"
        created = now - 3500 + 3500 * n / jobs
        finished = None if state == "available" else created + 0.05
        rows.append((f"{n:012d}", task, queue, state, b"x" * 64, created, created,
                     created if finished else None, finished))
        if len(rows) == 50_000:
            _insert(conn, rows)
            rows = []
    _insert(conn, rows)
    per = jobs // (len(TASKS) * len(QUEUES)) or 1
    conn.executemany(
        "INSERT OR REPLACE INTO runner_job_total (task, queue, enqueued, completed, dead, "
        f"duration_sum, {', '.join(f'le{i}' for i in range(len(BUCKETS)))}) VALUES "
        f"(?,?,?,?,?,?{',?' * len(BUCKETS)})",
        [(t, q, per, per, per // 100, per * 0.05, *[per if le >= 0.05 else 0 for le in BUCKETS])
         for t in TASKS for q in QUEUES])
    conn.execute("COMMIT")
    conn.close()


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at, started_at, "
        "finished_at) VALUES (?,?,?,?,?,?,?,?,?)", rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> tuple[float, int]:
    began = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        body = response.read()
    return 1000 * (time.perf_counter() - began), len(body)


class Target:
    def __init__(self, name: str, work: Path, jobs: int) -> None:
        self.name, self.jobs = name, jobs
        self.dir = work / name
        self.dir.mkdir()
        self.db = self.dir / "jobs.db"
        began = time.monotonic()
        fill(self.db, jobs)
        print(f"  {name}: {jobs:,} jobs written in {time.monotonic() - began:.0f}s "
              f"({self.db.stat().st_size / 2**20:.0f} MiB)")
        self.port = free_port()
        settings = self.dir / "settings.toml"
        settings.write_text(SETTINGS.format(db=self.db, port=self.port))
        self.proc = spawn([python(), "run.py", "--settings", str(settings)], {},
                          Path(__file__).resolve().parent.parent, self.dir / "worker.log")
        self.times: list[float] = []
        self.window: list[float] = []

    def ready(self) -> bool:
        try:
            scrape(self.port)
            return True
        except OSError:
            return False

    def window_figures(self) -> None:
        db = Database(self.db, DatabaseSection(), readonly=True)
        began = time.perf_counter()
        metrics.collect(db)
        self.window.append(1000 * (time.perf_counter() - began))
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--scrapes", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    print(f"scrape benchmark, work dir {work}")
    small, big = Target("small", work, args.small), Target("big", work, args.big)
    try:
        for target in (small, big):
            if not wait_until(target.ready, timeout=300):
                raise SystemExit(f"{target.name}: worker did not serve /metrics; see "
                                 f"{target.dir / 'worker.log'}")
        size = 0
        for _ in range(3):  # warm both page caches
            scrape(small.port), scrape(big.port)
        for _ in range(args.scrapes):  # A B A B
            for target in (small, big):
                took, size = scrape(target.port)
                target.times.append(took)
        for _ in range(3):
            small.window_figures()
            big.window_figures()
    finally:
        stop(small.proc)
        stop(big.proc)
    s, b = statistics.median(small.times), statistics.median(big.times)
    print(f"\nGET /metrics from a worker, median of {args.scrapes} ({size:,} bytes):")
    print(f"  {args.small:>9,} jobs  {s:7.1f} ms   (max {max(small.times):.1f})")
    print(f"  {args.big:>9,} jobs  {b:7.1f} ms   (max {max(big.times):.1f})   "
          f"{b / s:.2f}x the small one")
    verdict = "met" if b < 50 and b / s <= 2 else "NOT met"
    print(f"  target (< 50 ms, within 2x): {verdict}")
    ws, wb = statistics.median(small.window), statistics.median(big.window)
    print("\nfor reference, the last hour's window figures (`stats`, not scraped):")
    print(f"  {args.small:>9,} jobs  {ws:7.1f} ms")
    print(f"  {args.big:>9,} jobs  {wb:7.1f} ms   {wb / ws:.0f}x the small one")


if __name__ == "__main__":
    main()
