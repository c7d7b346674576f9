"""CPU per single enqueue from a script, ours and plain huey, without the fsync.

    .venv/bin/python bench/enqueue_cost.py [--jobs 2000] [--rounds 5] [--callgrind]

At ``synchronous=FULL`` both sides pay one fsync of the WAL per enqueue (the
same count: ``strace -c`` shows one ``fdatasync`` per commit on either side),
and on a shared disk that wait swings by 10x from minute to minute. What is
left, and what separates the two, is the CPU of the call: this measures it as
process time with ``synchronous=OFF`` on both sides (no sync, the same
statements), rounds A B A B, medians. It also splits our SQL into its
statements (begin, job insert, counters, commit) on the same file, so a
schema change can be priced without a wall clock.

With ``--callgrind``: instructions per enqueue under ``valgrind --tool=callgrind``
at synchronous=FULL, from ``bench.enqueue`` runs of 200 and 1,200 jobs (the
difference, so start-up cancels out); the time a sync waits is not an
instruction, so the figure does not move with the disk or the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import jobs_written  # noqa: E402

SETTINGS = """
[runner]
database = "{db}"
[worker]
queue_size = 0
log_level = "INFO"
[database]
synchronous = "OFF"
"""


ROOT = Path(__file__).resolve().parent.parent


def instructions(work: Path, system: str, count: int) -> int:
    """User-space instructions of ``bench.enqueue system count`` (a fresh file each run)."""
    run = Path(tempfile.mkdtemp(prefix=f"{system}-{count}-", dir=work))
    settings = run / "settings.toml"
    settings.write_text(SETTINGS.format(db=run / "jobs.db").replace('"OFF"', '"FULL"'))
    out = run / "callgrind.out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_HUEY_DB": str(run / "h.db"),
           "BENCH_RECORD": str(run / "record.txt"), "RUNNER_SETTINGS": str(settings)}
    subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                    "--dump-instr=no", "--collect-jumps=no", sys.executable, "-m",
                    "bench.enqueue", system, str(count), "--settings", str(settings)],
                   env=env, cwd=run, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    written = jobs_written(run / ("h.db" if system == "plain" else "jobs.db"),
                           plain=system == "plain")
    if written != count + 1:  # the calls and the one that opens the database
        raise SystemExit(f"{system}: {written} jobs written for {count + 1} calls")
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def per_call(fn, count: int) -> float:  # noqa: ANN001
    started = time.process_time()
    for n in range(count):
        fn(n)
    return (time.process_time() - started) / count * 1e6


def sql_split(conn, count: int) -> dict[str, float]:  # noqa: ANN001
    """Process time of each statement of our single enqueue, in microseconds."""
    from runner.ids import new_id
    from runner.store.sqlite import counters, transitions

    task, queue, priority, data, args, attempts = conn.execute(
        "SELECT task, queue, priority, data, args, max_attempts FROM runner_job "
        "LIMIT 1").fetchone()
    spent = dict.fromkeys(("begin", "insert", "counters", "commit"), 0.0)
    clock = time.process_time
    for _ in range(count):
        a = clock()
        conn.execute("BEGIN IMMEDIATE")
        b = clock()
        now = time.time()
        conn.execute(transitions._insert_many(1, False),  # the statement of a plain job
                     (new_id(), task, queue, priority, "available", data, args, attempts, now,
                      now))
        c = clock()
        conn.execute(counters._ADD_ONE, (task, queue, counters.QUEUE_ROW, queue))
        d = clock()
        conn.execute("COMMIT")
        e = clock()
        for name, took in zip(spent, (b - a, c - b, d - c, e - d), strict=True):
            spent[name] += took
    return {name: took / count * 1e6 for name, took in spent.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="enqueue-cost-"))
    if args.callgrind:
        small, large = 200, 1200
        per = {system: (instructions(work, system, large) - instructions(work, system, small))
               / (large - small) for system in ("plain", "ours")}
        print(f"instructions per single enqueue at FULL (callgrind, {large} - {small} jobs): "
              f"plain huey {per['plain']:,.0f}, ours {per['ours']:,.0f} "
              f"({per['plain'] / per['ours']:.2f}x)")
        return
    settings = work / "settings.toml"
    settings.write_text(SETTINGS.format(db=work / "jobs.db"))
    os.environ.update(RUNNER_SETTINGS=str(settings), BENCH_HUEY_DB=str(work / "h.db"),
                      BENCH_RECORD=str(work / "record.txt"))
    from bench import core_tasks

    core_tasks.plain_noop(-1)
    core_tasks.plain.storage.conn.execute("PRAGMA synchronous = OFF")
    core_tasks.runner_noop(-1)
    runs: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(args.rounds):
        runs["plain"].append(per_call(core_tasks.plain_noop, args.jobs))
        runs["ours"].append(per_call(core_tasks.runner_noop, args.jobs))
    calls = 1 + args.rounds * args.jobs
    for db, plain_side in ((work / "h.db", True), (work / "jobs.db", False)):
        if (written := jobs_written(db, plain=plain_side)) != calls:
            raise SystemExit(f"{db.name}: {written} jobs written for {calls} calls")
    plain, ours = (statistics.median(runs[k]) for k in ("plain", "ours"))
    print(f"CPU per single enqueue, synchronous=OFF both sides, {args.jobs} x {args.rounds} "
          f"rounds A B A B (medians): plain huey {plain:.1f} us, ours {ours:.1f} us "
          f"({plain / ours:.2f}x)")
    conn = core_tasks.runner_noop.huey.storage.store.db.connection()  # type: ignore[attr-defined]
    split = sql_split(conn, args.jobs)
    print("  ours, SQL of one enqueue: " + ", ".join(f"{k} {v:.1f}" for k, v in split.items())
          + f" = {sum(split.values()):.1f} us; the rest ({ours - sum(split.values()):.1f} us) "
          "is Python")


if __name__ == "__main__":
    main()
