"""Single enqueues from one script, ours and plain huey taking turns call by call.

    .venv/bin/python bench/enqueue_paired.py [--jobs 2000] [--sync FULL]

At ``synchronous=FULL`` each enqueue waits for one fsync, and on a shared disk
that wait drifts by 2x within a minute, more than the difference being
measured. Rounds of a few seconds each (``bench_core --enqueue-only``) see
that drift between an A round and its B round. Here both run in one process
and alternate at every call (plain, ours, plain, ours ...), so each pair of
calls meets the same disk: the figure is the ratio of the two sides' total
time, and of their medians per call. The side that goes first swaps at every
pair, since a commit right after another file's fsync can wait on it.

Both files are new, and a new WAL file grows with each commit until its first
checkpoint; growing the file makes every fsync also write the file's size, so
a side that writes fewer pages per commit stays longer in that slower phase.
``--warmup`` calls per side (untimed) first take both WALs past it to the
steady state a running system is in. The counts are checked afterwards (every
job written exactly once on each side).
"""

from __future__ import annotations

import argparse
import os
import statistics
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
queue_size = {queue_size}
log_level = "INFO"
[database]
synchronous = "{sync}"
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    parser.add_argument("--queue-size", type=int, default=0,
                        help="ours' [worker] queue_size (0: unbounded, as huey is); nothing "
                        "drains the queue here, so a bound must be above --jobs")
    parser.add_argument("--warmup", type=int, default=3000,
                        help="untimed calls per side first, so both WAL files reach the size "
                        "they keep between checkpoints (0: time the growth too)")
    args = parser.parse_args()
    total_jobs = args.jobs + args.warmup
    if 0 < args.queue_size <= total_jobs:
        parser.error(f"--queue-size {args.queue_size} would fill up: no worker drains the "
                     f"queue, so make it 0 or more than --jobs + --warmup ({total_jobs})")
    work = Path(tempfile.mkdtemp(prefix="bench-paired-"))
    settings = work / "settings.toml"
    settings.write_text(SETTINGS.format(db=work / "jobs.db", sync=args.sync,
                                        queue_size=args.queue_size))
    os.environ["RUNNER_SETTINGS"] = str(settings)
    os.environ["BENCH_HUEY_DB"] = str(work / "huey.db")
    os.environ["BENCH_RECORD"] = str(work / "record.txt")
    from bench import core_tasks  # the environment above picks the files
    if args.sync != "FULL":  # huey's SqliteStorage leaves SQLite's default (FULL)
        core_tasks.plain.storage.sql("PRAGMA synchronous = " + args.sync)
    plain, ours = core_tasks.plain_noop, core_tasks.runner_noop
    for n in range(-args.warmup - 1, 0):
        plain(n)
        ours(n)
    times: dict[str, list[float]] = {"plain": [], "ours": []}
    cpu = {"plain": 0.0, "ours": 0.0}
    clock, process = time.perf_counter, time.process_time
    sides = {"plain": plain, "ours": ours}
    for n in range(args.jobs):
        for name in ("plain", "ours") if n % 2 == 0 else ("ours", "plain"):
            c0, started = process(), clock()
            sides[name](n)
            end, c1 = clock(), process()
            times[name].append(end - started)
            cpu[name] += c1 - c0
    written = jobs_written(work / "jobs.db")
    if written != total_jobs + 1:
        raise SystemExit(f"ours wrote {written} jobs, not {total_jobs + 1}")
    if (written := jobs_written(work / "huey.db", plain=True)) != total_jobs + 1:
        raise SystemExit(f"plain huey wrote {written} jobs, not {total_jobs + 1}")
    total = {k: sum(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.jobs} single enqueues each, alternating call by call, synchronous={args.sync}, "
          f"queue_size={args.queue_size}, after {args.warmup} untimed each, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"  enqueues/s       plain {args.jobs / total['plain']:8.0f}   ours "
          f"{args.jobs / total['ours']:8.0f}   {total['plain'] / total['ours']:.2f}x")
    print(f"  median per call  plain {median['plain'] * 1e6:6.0f} us   ours "
          f"{median['ours'] * 1e6:6.0f} us   {median['plain'] / median['ours']:.2f}x")
    print(f"  CPU per call     plain {cpu['plain'] / args.jobs * 1e6:6.0f} us   ours "
          f"{cpu['ours'] / args.jobs * 1e6:6.0f} us   (process time, user and system)")


if __name__ == "__main__":
    main()
