"""Cost of storing job logs: the drain benchmark with job-log capture on and off, same run.

Each job logs 3 lines at INFO. Both modes write the same ``worker.log`` file;
"on" also keeps every line in ``runner_log`` (``[logging] store = true``), "off"
does not. A real ``run.py`` (1 and 4 worker threads) drains N pre-enqueued
jobs; throughput is N / (last finish - first start), read from the jobs table,
after checking every job completed exactly once. Modes alternate, and the
median of the rounds is reported, because this machine is shared and noisy.

    .venv/bin/python bench/bench_logs.py [--jobs 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from runner import configure, get_huey, load_settings, task  # noqa: E402

log = logging.getLogger("bench.job")


@task(retry_limit=0, timeout=0)
def logged(n):
    log.info("job %d starting", n)
    log.info("job %d working on %s", n, "payload")
    log.info("job %d done", n)


SETTINGS = """
[runner]
database = "jobs.db"
imports = ["bench_logs"]
[worker]
max_concurrent_tasks = {threads}
queue_size = 0
[database]
synchronous = "NORMAL"
[logging]
console = false
store = {store}
[retention]
enabled = false
"""


def drain_once(store: bool, jobs: int, threads: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        path = Path(tmp) / "settings.toml"
        path.write_text(SETTINGS.format(threads=threads, store=str(store).lower()))
        settings = load_settings(path, environ={})
        configure(settings)
        huey = get_huey()
        storage = huey.jobs
        import bench_logs  # the worker knows the task as bench_logs.logged, not __main__.logged

        for start in range(0, jobs, 1000):
            storage.insert_jobs([huey.new_job(bench_logs.logged.s(i))
                                 for i in range(start, min(jobs, start + 1000))])
        env = dict(os.environ, PYTHONPATH=f"{ROOT}:{ROOT / 'bench'}")
        proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--settings", str(path)],
                                cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        conn = sqlite3.connect(settings.database_path)
        try:
            deadline = time.monotonic() + 300
            while conn.execute("SELECT count(*) FROM runner_job WHERE state='completed'"
                               ).fetchone()[0] < jobs:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("drain did not finish")
                time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(30)
        first, last, done, attempts = conn.execute(
            "SELECT min(started_at), max(finished_at), count(*), sum(attempt) FROM runner_job "
            "WHERE state='completed'").fetchone()
        assert done == jobs and attempts == jobs, "every job exactly once"
        stored = conn.execute("SELECT count(*) FROM runner_log WHERE job_id IS NOT NULL"
                              ).fetchone()[0]
        assert stored == (3 * jobs if store else 0), f"stored {stored} job lines"
        conn.close()
        storage.db.close()
        return jobs / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    for threads in args.threads:
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for store in (False, True):
                rates[store].append(drain_once(store, args.jobs, threads))
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"{threads} thread(s), {args.jobs} jobs x 3 log lines, median of {args.rounds}: "
              f"capture off {off:,.0f} jobs/s, on {on:,.0f} jobs/s, "
              f"ratio {on / off:.2f} (cost {100 * (1 - on / off):.1f}%)")
        print(f"  rounds off: {', '.join(f'{r:,.0f}' for r in rates[False])}; "
              f"on: {', '.join(f'{r:,.0f}' for r in rates[True])}")


if __name__ == "__main__":
    main()
