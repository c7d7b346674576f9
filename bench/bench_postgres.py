"""PostgreSQL benchmark: the runner on PostgreSQL, on SQLite, and plain huey's PostgresHuey.

    .venv/bin/python bench/bench_postgres.py [--jobs 20000] [--rounds 3] [--idle 10]

Figures, each the median of ``--rounds`` rounds run A B C A B C in the same run:

* drain of pre-enqueued no-op jobs by 1, 2 and 4 consumer processes of 4 threads
  each (``run.py`` on PostgreSQL, ``run.py`` on one SQLite file at FULL, and
  ``huey_consumer -w 4 -k thread`` with ``PostgresHuey``), with the CPU the
  consumers used (this machine has 2 cores, shared);
* enqueue rate from one script (one job per call, as a user enqueues; the rest
  of the jobs to drain go in bulk where the system has it: ``task.map``);
* enqueue-to-start latency after an idle period (a job every 20 ms, 1 process):
  the first job, p50 and p99.

Both sides run what a user gets (task timeouts and retries on, INFO logs), and
every job must have run exactly once by what the tasks recorded. PostgreSQL
runs each system in a schema of its own, dropped at the end (``$BENCH_POSTGRES``
names the server and database; default the ``test`` database on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import line, percentile, python, read_record, spawn, stop, wait_until  # noqa: E402

BASE = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
THREADS = 4

SETTINGS = """
[runner]
database = "{database}"
imports = ["bench.pg_tasks"]
[worker]
queue_type = "{queue_type}"
max_concurrent_tasks = {threads}
queue_size = 0
log_level = "INFO"
[database]
synchronous = "FULL"
"""


class System:
    """One system under test: where its jobs live, how to enqueue and consume."""

    def __init__(self, name: str, work: Path, schemas: list[str]) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
        self.record = self.dir / "record.txt"
        schema = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(BASE, autocommit=True) as admin:
            admin.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        url = f"{BASE}?options=-csearch_path%3D{schema}"
        self.env = {"BENCH_RECORD": str(self.record), "BENCH_PG_DSN": url}
        database = str(self.dir / "jobs.db") if name == "sqlite" else url
        self.settings = self.dir / "settings.toml"
        self.settings.write_text(SETTINGS.format(
            database=database, queue_type="sqlite" if name == "sqlite" else "postgres",
            threads=THREADS))

    def enqueue(self, count: int, interval: float = 0.0, out: Path | None = None,
                bulk: bool = False, start: int = 0) -> float:
        args = [python(), str(Path(__file__).resolve()), "enqueue",
                "plain" if self.name == "huey" else "ours", str(count),
                "--settings", str(self.settings), "--start", str(start)]
        if bulk:
            args.append("--bulk")
        if interval:
            args += ["--interval", str(interval), "--out", str(out)]
        log = self.dir / "enqueue.log"
        spawn(args, self.env, self.dir, log).wait()
        return float(log.read_text().split()[-1])

    def consumer(self, index: int):  # noqa: ANN201 - a Popen
        if self.name == "huey":
            args = [python(), "-m", "huey.bin.huey_consumer", "bench.pg_tasks.plain",
                    "-w", str(THREADS), "-k", "thread"]
        else:
            args = [python(), str(Path(__file__).resolve().parent.parent / "run.py"),
                    "--settings", str(self.settings)]
        env = {**self.env, "RUNNER_NODE_NAME": f"node{index}"}
        return spawn(args, env, self.dir, self.dir / f"consumer-{index}.log")

    def records(self) -> list[tuple[int, float]]:
        return [r for r in read_record(self.record) if r[0] >= 0]


def drain(system: System, jobs: int, processes: int,
          singles: int) -> tuple[float, float, float, float]:
    """(enqueue rate, drain jobs/s, CPU cores used by the consumers, steady jobs/s) for
    ``jobs`` jobs.

    The steady rate is over the middle half of the jobs (from the 25th to the 75th
    percentile of their start times): consumers start together, and on a small
    machine the first one drains while the others still import and connect, so
    the whole-drain rate of a short drain mostly measures start-up.

    The rate is of ``singles`` jobs enqueued one call each (ids from ``jobs`` on, so
    they are drained too); the rest go in bulk where the system has it (ours:
    ``task.map``; plain huey writes one job per call either way).
    """
    system.enqueue(jobs - singles, bulk=True)
    enqueue_rate = system.enqueue(singles, start=jobs - singles)
    procs = [system.consumer(i) for i in range(processes)]
    watched = [psutil.Process(p.pid) for p in procs]
    started = time.monotonic()
    ok = wait_until(lambda: len(system.records()) >= jobs, timeout=600, interval=0.2)
    wall = time.monotonic() - started
    cpu = sum(w.cpu_times().user + w.cpu_times().system for w in watched if w.is_running())
    for proc in procs:
        stop(proc)
    rows = system.records()
    ids = sorted(n for n, _ in rows)
    if not ok or ids != list(range(jobs)):
        raise SystemExit(f"{system.name}: expected every id exactly once, got {len(ids)} "
                         f"records, {len(set(ids))} distinct (see {system.dir})")
    times = sorted(at for _, at in rows)
    low, high = len(times) // 4, 3 * len(times) // 4
    steady = (high - low) / max(times[high] - times[low], 1e-9)
    return enqueue_rate, (jobs - 1) / (times[-1] - times[0]), cpu / wall, steady


def latency(system: System, idle: float, count: int = 250) -> tuple[float, float, float]:
    """(first job ms, p50 ms, p99 ms) for a job every 20 ms after ``idle`` seconds idle."""
    proc = system.consumer(0)
    time.sleep(3.0 + idle)  # start-up, then idle
    out = system.dir / "enqueued.txt"
    system.enqueue(count, interval=0.02, out=out)
    wait_until(lambda: len(system.records()) >= count, timeout=60)
    stop(proc)
    sent = dict(read_record(out))
    started = dict(system.records())
    delays = [1000 * (started[n] - sent[n]) for n in range(count) if n in started]
    return delays[0], percentile(delays, 50), percentile(delays, 99)


def enqueue_main(argv: list[str]) -> None:
    """``enqueue plain|ours N``: enqueue N jobs one call each; prints the rate."""
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["plain", "ours"])
    parser.add_argument("count", type=int)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--out")
    parser.add_argument("--settings")
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--bulk", action="store_true")
    args = parser.parse_args(argv)
    os.environ["RUNNER_SETTINGS"] = args.settings
    from bench.pg_tasks import pg_noop, plain_pg_noop

    fn = plain_pg_noop if args.system == "plain" else pg_noop
    fn(-1)  # open the database before timing
    numbers = range(args.start, args.start + args.count)
    times = []
    started = time.perf_counter()
    if args.bulk and args.system == "ours":
        pg_noop.map(numbers)
        numbers = range(0)
    for n in numbers:
        if args.interval:
            delay = started + n * args.interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        times.append(time.time())
        fn(n)
    elapsed = time.perf_counter() - started
    if args.out:
        Path(args.out).write_text("".join(f"{n} {at:.6f}\n"
                                          for n, at in zip(numbers, times, strict=True)))
    print(f"{args.count / elapsed:.1f}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # run the clean-up (drop the schemas) on SIGTERM too


def main() -> None:
    if sys.argv[1:2] == ["enqueue"]:
        enqueue_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--singles", type=int, default=1000,
                        help="of --jobs, how many are enqueued one call each (the rate)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)
    work = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    schemas: list[str] = []
    print(f"PostgreSQL benchmark: {args.jobs} no-op jobs, {args.rounds} rounds A B C "
          f"(medians), {THREADS} threads per process, work dir {work}; load {os.getloadavg()}")
    print("ours-pg = run.py on PostgreSQL; ours-sqlite = run.py on one SQLite file at FULL; "
          "huey = plain huey PostgresHuey (huey_consumer -k thread)\n")
    try:
        for processes in (int(p) for p in args.processes.split(",")):
            runs: dict[str, list[tuple[float, float, float, float]]] = {"huey": [], "postgres": [],
                                                                  "sqlite": []}
            for _ in range(args.rounds):
                for name in runs:
                    runs[name].append(drain(System(name, work, schemas), args.jobs, processes,
                                            args.singles))
            med = {k: [statistics.median(r[i] for r in v) for i in range(4)]
                   for k, v in runs.items()}
            print(f"drain, {processes} process(es) x {THREADS} threads "
                  f"(load {os.getloadavg()[0]:.1f}):")
            print(line("jobs/s, ours on PostgreSQL vs PostgresHuey", med["huey"][1],
                       med["postgres"][1], "jobs/s"))
            print(line("jobs/s, ours on SQLite vs PostgresHuey", med["huey"][1],
                       med["sqlite"][1], "jobs/s"))
            print(line("steady jobs/s (middle half), PG vs huey", med["huey"][3],
                       med["postgres"][3], "jobs/s"))
            print(f"  CPU cores used by the consumers: huey {med['huey'][2]:.2f}, "
                  f"ours-pg {med['postgres'][2]:.2f}, ours-sqlite {med['sqlite'][2]:.2f}")
            print(line("enqueues/s from a script, ours-pg vs huey", med["huey"][0],
                       med["postgres"][0], "/s"))
            sys.stdout.flush()
        if not args.skip_latency:
            print(f"\nenqueue-to-start latency, a job every 20 ms after {args.idle:g}s idle, "
                  "1 process:")
            plain = latency(System("huey", work, schemas), args.idle)
            ours = latency(System("postgres", work, schemas), args.idle)
            for label, p, o in zip(("first job after idle (ms)", "p50 (ms)", "p99 (ms)"),
                                   plain, ours, strict=True):
                print(line(label, p, o, "ms", higher_is_better=False))
    finally:
        with psycopg.connect(BASE, autocommit=True) as admin:
            for schema in schemas:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
