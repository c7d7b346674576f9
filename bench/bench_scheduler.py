"""Scheduler benchmark: fire lag under load, and CPU while idle.

1. Lag: 100 schedules firing every second (``*/1 * * * * *``) for 60 s in one
   ``run.py`` (scheduler and workers together). Lag is the recorded actual fire
   time minus the planned slot, over every fired slot: p50 / p99 / max, and
   whether any schedule missed a second. Target: p99 <= 50 ms.
2. Idle CPU: 1,000 schedules that do not fire during the window, in
   ``run.py --scheduler-only`` (the scheduler alone) and in a full ``run.py``
   (scheduler plus idle workers), measured as process CPU time over a window.
   Target: < 1 % for the scheduler.

Usage: .venv/bin/python bench/bench_scheduler.py [--seconds 60] [--idle-seconds 30]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import percentile, python, spawn, stop, wait_until  # noqa: E402

TASKS = '''
import os
from runner import scheduled_task

def noop():
    return None

for i in range(int(os.environ["BENCH_SCHEDULES"])):
    scheduled_task(name=f"bench_{i:04d}", cron=os.environ["BENCH_CRON"], overlap="allow",
                   retry_limit=0)(noop)
'''

SETTINGS = '''
[runner]
database = "jobs.db"
imports = ["bench_sched_tasks"]

[worker]
max_concurrent_tasks = {threads}
queue_size = 0
log_level = "WARNING"
'''


def start(directory: Path, schedules: int, cron: str, *args: str) -> subprocess.Popen:
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{directory}", "BENCH_SCHEDULES": str(schedules),
           "BENCH_CRON": cron}
    return spawn([python(), str(ROOT / "run.py"), "--settings", str(directory / "settings.toml"),
                  *args], env, directory, directory / "run.log")


def query(db: Path, sql: str) -> list[tuple]:
    for _ in range(100):
        try:
            conn = sqlite3.connect(db, timeout=10)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        except sqlite3.OperationalError:  # not created yet
            time.sleep(0.1)
    raise RuntimeError(f"cannot read {db}")


def wait_for(condition, timeout: float, what: str) -> None:  # noqa: ANN001
    if not wait_until(condition, timeout):
        raise RuntimeError(f"timed out waiting for {what}")


def prepare(directory: Path, threads: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "bench_sched_tasks.py").write_text(TASKS)
    (directory / "settings.toml").write_text(SETTINGS.format(threads=threads))
    return directory / "jobs.db"


def bench_lag(base: Path, schedules: int, seconds: float) -> None:
    db = prepare(base / "lag", threads=4)
    proc = start(db.parent, schedules, "*/1 * * * * *")
    try:
        wait_for(lambda: query(db, "SELECT count(*) FROM runner_schedule_run")[0][0] > 0
                   if db.exists() else False, 60, "the first fired slot")
        (first,) = query(db, "SELECT min(slot) FROM runner_schedule_run")[0]
        end = first + seconds
        wait_for(lambda: query(db, "SELECT max(slot) FROM runner_schedule_run")[0][0] >= end,
                   seconds + 60, f"{seconds:g} s of slots")
        time.sleep(0.5)  # let the last batch commit before stopping
    finally:
        stop(proc)
    rows = query(db, f"SELECT schedule, slot, fired_at FROM runner_schedule_run "
                     f"WHERE slot <= {end} AND manual = 0")
    lags = [(fired - slot) * 1000 for _, slot, fired in rows]
    per: dict[str, list[float]] = {}
    for name, slot, _ in rows:
        per.setdefault(name, []).append(slot)
    missed = sum(int(max(s) - min(s)) + 1 - len(s) for s in per.values())
    expected = schedules * (int(seconds) + 1)
    (done,) = query(db, "SELECT count(*) FROM runner_job WHERE state = 'completed'")[0]
    print(f"lag: {schedules} schedules x every second for {seconds:g} s in one run.py: "
          f"{len(rows)} slots fired (expected {expected}), {missed} seconds missed, "
          f"{done} jobs completed")
    print(f"     lag p50 {statistics.median(lags):.1f} ms, p99 {percentile(lags, 99):.1f} ms, "
          f"max {max(lags):.1f} ms (target p99 <= 50 ms)")


def bench_idle(base: Path, schedules: int, seconds: float, *args: str) -> float:
    label = "scheduler-only" if args else "full"
    db = prepare(base / f"idle-{label}", threads=10)
    # Yearly, at a minute that is not now: nothing fires during the window.
    minute = (time.gmtime().tm_min + 30) % 60
    proc = start(db.parent, schedules, f"{minute} 3 1 1 *", *args)
    try:
        wait_for(lambda: db.exists() and query(
            db, "SELECT count(*) FROM runner_schedule")[0][0] == schedules, 60, "the sync")
        process = psutil.Process(proc.pid)
        time.sleep(2.0)  # let start-up work (imports, sync, first heartbeats) settle
        before = process.cpu_times()
        started = time.monotonic()
        time.sleep(seconds)
        after = process.cpu_times()
        elapsed = time.monotonic() - started
        rss = process.memory_info().rss
    finally:
        stop(proc)
    used = (after.user - before.user) + (after.system - before.system)
    percent = 100 * used / elapsed
    print(f"idle: {schedules} schedules, run.py {' '.join(args) or '(scheduler + 10 workers)'}: "
          f"{percent:.2f}% CPU over {elapsed:.0f} s ({used * 1000:.0f} ms), "
          f"RSS {rss / 2**20:.0f} MiB")
    return percent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="lag phase length")
    parser.add_argument("--idle-seconds", type=float, default=30, help="idle CPU window")
    parser.add_argument("--schedules", type=int, default=100, help="schedules in the lag phase")
    parser.add_argument("--idle-schedules", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sched-") as tmp:
        base = Path(tmp)
        bench_lag(base, args.schedules, args.seconds)
        bench_idle(base, args.idle_schedules, args.idle_seconds, "--scheduler-only")
        bench_idle(base, args.idle_schedules, args.idle_seconds)


if __name__ == "__main__":
    main()
