"""Enqueue N benchmark jobs from a script: ``python -m bench.enqueue plain|ours N``.

Prints the enqueue rate. With ``--interval`` it paces the jobs and writes the
enqueue time of each to ``--out`` (for start latency).
"""

from __future__ import annotations

import argparse
import importlib
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("system", choices=["plain", "ours"])
    parser.add_argument("count", type=int)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--out")
    parser.add_argument("--settings")
    parser.add_argument("--tasks", default="bench.core_tasks",
                        help="the module of plain_noop and runner_noop")
    args = parser.parse_args()
    if args.settings:
        os.environ["RUNNER_SETTINGS"] = args.settings
    tasks = importlib.import_module(args.tasks)

    fn = tasks.plain_noop if args.system == "plain" else tasks.runner_noop
    fn(-1)  # open the database before timing
    times = []
    started = time.perf_counter()
    for n in range(args.count):
        if args.interval:
            target = started + n * args.interval
            delay = target - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        times.append(time.time())
        fn(n)
    elapsed = time.perf_counter() - started
    if args.out:
        with open(args.out, "w") as out:
            out.writelines(f"{n} {at:.6f}\n" for n, at in enumerate(times))
    print(f"{args.count / elapsed:.1f}")


if __name__ == "__main__":
    main()
