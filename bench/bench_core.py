"""Core benchmark: plain huey (SqliteHuey) and this runner, measured in the same run.

    .venv/bin/python bench/bench_core.py [--jobs 20000] [--rounds 3] [--idle 30]

Figures: drain throughput of pre-enqueued no-op jobs with 1 and 4 workers,
enqueue rate from a script, enqueue-to-start latency (p50/p99, and the first job)
for a job every 20 ms after an idle period, and the idle consumer's CPU use.
Ours is measured at synchronous=FULL (plain huey's SQLite default, equal
durability: the headline) and at our default NORMAL.

Both sides run what a user gets: our task has the default timeout (300 s, so
the watchdog is armed for every job) and retries, both consumers log at INFO,
and every job must have run exactly once by what the tasks recorded. The
machine is shared, so each figure is the median of ``--rounds`` rounds run
A B A B (plain, ours, plain, ours ...).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    line,
    percentile,
    python,
    read_record,
    spawn,
    stop,
    wait_until,
)

SETTINGS = """
[runner]
database = "{db}"
imports = ["bench.core_tasks"]
[worker]
max_concurrent_tasks = {workers}
queue_size = 0
log_level = "INFO"
{timeout}
[database]
synchronous = "{sync}"
"""


class System:
    """How to enqueue into and consume from one system under test."""

    def __init__(self, name: str, work: Path, workers: int, sync: str = "FULL",
                 timeouts: bool = True) -> None:
        self.name, self.workers, self.sync = name, workers, sync
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-{sync}-w{workers}-", dir=work))
        self.record = self.dir / "record.txt"
        self.log = self.dir / "consumer.log"
        self.env = {"BENCH_RECORD": str(self.record), "BENCH_HUEY_DB": str(self.dir / "h.db")}
        self.settings = self.dir / "settings.toml"
        self.settings.write_text(SETTINGS.format(db=self.dir / "jobs.db", workers=workers,
                                                 sync=sync,
                                                 timeout="" if timeouts else "timeout = 0"))

    def enqueue(self, count: int, interval: float = 0.0, out: Path | None = None) -> float:
        args = [python(), "-m", "bench.enqueue", "plain" if self.name == "plain" else "ours",
                str(count), "--settings", str(self.settings)]
        if interval:
            args += ["--interval", str(interval), "--out", str(out)]
        proc = spawn(args, self.env, self.dir, self.dir / "enqueue.log")
        proc.wait()
        text = (self.dir / "enqueue.log").read_text().split()
        return float(text[-1])

    def consumer(self):  # noqa: ANN201
        if self.name == "plain":
            args = [python(), "-m", "huey.bin.huey_consumer", "bench.core_tasks.plain",
                    "-w", str(self.workers), "-k", "thread"]
        else:
            args = [python(), str(Path(__file__).resolve().parent.parent / "run.py"),
                    "--settings", str(self.settings)]
        return spawn(args, self.env, self.dir, self.log)

    def records(self) -> list[tuple[int, float]]:
        return [r for r in read_record(self.record) if r[0] >= 0]


def drain(system: System, jobs: int) -> tuple[float, float]:
    """(enqueue rate, drain rate) for ``jobs`` pre-enqueued no-op jobs."""
    enqueue_rate = system.enqueue(jobs)
    proc = system.consumer()
    ok = wait_until(lambda: len(system.records()) >= jobs, timeout=300, interval=0.2)
    stop(proc)
    rows = system.records()
    ids = sorted(n for n, _ in rows)
    if not ok or ids != list(range(jobs)):
        raise SystemExit(f"{system.name}: expected every id exactly once, got {len(ids)} "
                         f"records, {len(set(ids))} distinct")
    times = sorted(at for _, at in rows)
    return enqueue_rate, (jobs - 1) / (times[-1] - times[0])


def latency(system: System, idle: float, count: int = 250) -> tuple[float, float, float, float]:
    """(first job ms, p50 ms, p99 ms, idle CPU %) after ``idle`` seconds idle."""
    proc = system.consumer()
    time.sleep(2.0)  # start-up
    process = psutil.Process(proc.pid)
    before = process.cpu_times()
    time.sleep(idle)
    after = process.cpu_times()
    cpu = 100 * ((after.user - before.user) + (after.system - before.system)) / idle
    out = system.dir / "enqueued.txt"
    system.enqueue(count, interval=0.02, out=out)
    wait_until(lambda: len(system.records()) >= count, timeout=60)
    stop(proc)
    sent = dict(read_record(out))
    started = dict(system.records())
    delays = [1000 * (started[n] - sent[n]) for n in range(count) if n in started]
    return delays[0], percentile(delays, 50), percentile(delays, 99), cpu


def enqueue_rates(work: Path, jobs: int, rounds: int) -> None:
    """Single enqueues from a script, plain huey and ours, ``rounds`` times A B A B."""
    runs: dict[str, list[float]] = {"plain": [], "FULL": [], "NORMAL": []}
    for _ in range(rounds):
        runs["plain"].append(System("plain", work, 1).enqueue(jobs))
        runs["FULL"].append(System("ours", work, 1, "FULL").enqueue(jobs))
        runs["NORMAL"].append(System("ours", work, 1, "NORMAL").enqueue(jobs))
    print(f"enqueue from a script, {jobs} jobs, {rounds} rounds A B A B (medians; rounds: "
          + "; ".join(f"{k} {' '.join(f'{v:.0f}' for v in r)}" for k, r in runs.items()) + ")")
    rate = {k: statistics.median(v) for k, v in runs.items()}
    print(line("enqueues/s, ours at FULL", rate["plain"], rate["FULL"], "/s"))
    print(line("enqueues/s, ours at NORMAL", rate["plain"], rate["NORMAL"], "/s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--enqueue-only", action="store_true",
                        help="only the enqueue rates (no consumers): --jobs per round, ABAB")
    parser.add_argument("--timeout-cost", action="store_true",
                        help="also drain with task timeouts off, to price the watchdog")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-core-"))
    if args.enqueue_only:
        enqueue_rates(work, args.jobs, args.rounds)
        return
    print(f"core benchmark: {args.jobs} no-op jobs, {args.rounds} rounds A B A B (medians), "
          f"work dir {work}")
    print("plain = huey SqliteHuey (thread workers, default logging at INFO); ours with the "
          "defaults (timeout 300 s, retries, INFO) at FULL (equal durability) and NORMAL "
          "(our default)\n")
    for workers in (1, 4):
        runs: dict[str, list[tuple[float, float]]] = {"plain": [], "FULL": [], "NORMAL": [],
                                                      "untimed": []}
        for _ in range(args.rounds):
            runs["plain"].append(drain(System("plain", work, workers), args.jobs))
            runs["FULL"].append(drain(System("ours", work, workers, "FULL"), args.jobs))
            runs["NORMAL"].append(drain(System("ours", work, workers, "NORMAL"), args.jobs))
            if args.timeout_cost:
                runs["untimed"].append(drain(System("ours", work, workers, "FULL", False),
                                             args.jobs))
        enq = {k: statistics.median(e for e, _ in v) for k, v in runs.items() if v}
        rate = {k: statistics.median(d for _, d in v) for k, v in runs.items() if v}
        print(f"drain, {workers} worker(s):")
        print(line("jobs/s, ours at FULL", rate["plain"], rate["FULL"], "jobs/s"))
        print(line("jobs/s, ours at NORMAL", rate["plain"], rate["NORMAL"], "jobs/s"))
        if "untimed" in rate:
            print(f"  task timeouts on (300 s) cost {1 - rate['FULL'] / rate['untimed']:.1%} of "
                  f"drain at FULL ({rate['FULL']:.0f} jobs/s against {rate['untimed']:.0f} "
                  "with timeout = 0)")
        print(f"enqueue from a script (before the {workers}-worker drains):")
        print(line("enqueues/s, ours at FULL", enq["plain"], enq["FULL"], "/s"))
        print(line("enqueues/s, ours at NORMAL", enq["plain"], enq["NORMAL"], "/s"))
        sys.stdout.flush()
    if args.skip_latency:
        return
    print(f"\nenqueue-to-start latency, a job every 20 ms after {args.idle:g}s idle, 1 worker:")
    p_first, p50, p99, p_cpu = latency(System("plain", work, 1), args.idle)
    o_first, o50, o99, o_cpu = latency(System("ours", work, 1, "FULL"), args.idle)
    print(line("first job after idle (ms)", p_first, o_first, "ms", higher_is_better=False))
    print(line("p50 (ms)", p50, o50, "ms", higher_is_better=False))
    print(line("p99 (ms)", p99, o99, "ms", higher_is_better=False))
    print(line("idle consumer CPU (%)", p_cpu, o_cpu, "%", higher_is_better=False))


if __name__ == "__main__":
    main()
