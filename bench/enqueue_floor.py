"""What a durable single enqueue costs in SQL alone, by what the row writes.

    .venv/bin/python bench/enqueue_floor.py [--jobs 3000] [--warmup 3000] [--sync FULL]

No runner or huey code on the timed path: raw ``sqlite3``, one transaction per
job, the statements each side runs. Plain huey's ``SqliteStorage`` writes one
row of its ``task`` table and one entry of its index. Ours writes the jobs
table as shipped (``runner.store.sqlite.models.DDL``), the job row the enqueue
writes and the counter upsert it runs. Then the same with, one by one, the
parts an index diet could remove:

- ``int key``: the text ``id`` primary key replaced by the integer rowid (its
  own B-tree gone: lookups by id would need the id to be a number);
- ``- claim``: also without ``runner_job_claim`` (claims then read
  ``runner_job_queue_claim`` queue by queue);
- ``- counters``: also without the counter upsert (no ``enqueued`` count per
  task, no O(1) queue bound). What is left writes one table and one index, as
  huey's does, with our row.

Last, what a single enqueue writes as shipped: one row of ``runner_intake``
(no index; the next transaction moves it into ``runner_job``, see
``runner.store.sqlite.transitions.intake``).

Each variant has its own new file, warmed first by ``--warmup`` untimed commits
so that every WAL has reached the size it keeps between checkpoints (a growing
WAL makes each fsync also write the file's size). Then the variants take turns
commit by commit, the first one rotating, so each meets the same disk; medians
per commit and the ratio of huey's median to each. Every file must hold
exactly the rows written to it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runner.ids import new_id  # noqa: E402
from runner.store.job_rows import NewJob  # noqa: E402
from runner.store.sqlite.counters import _ADD_ONE, QUEUE_ROW  # noqa: E402
from runner.store.sqlite.models import DDL  # noqa: E402
from runner.store.sqlite.transitions import intake  # noqa: E402
from runner.store.sqlite.transitions.enqueue import _INSERT_ONE  # noqa: E402

HUEY_DDL = [
    "create table task (id integer not null primary key, queue text not null, "
    "data blob not null, priority real not null default 0.0)",
    "create index task_queue_priority_id on task (queue, priority desc, id)",
]
TEXT_KEY = '"id" TEXT NOT NULL PRIMARY KEY'
TASK = "bench.core_tasks.runner_noop"
#: A no-op job's payload as the producer writes it (a pickled message of about this size).
DATA = bytes(range(256))[:190]


def our_ddl(*, int_key: bool, claim_index: bool) -> list[str]:
    statements = []
    for statement in DDL:
        if int_key and 'TABLE IF NOT EXISTS "runner_job" (' in statement:
            if TEXT_KEY not in statement:
                raise SystemExit("runner_job's id column changed: update this benchmark")
            statement = statement.replace(TEXT_KEY, '"id" INTEGER NOT NULL PRIMARY KEY')
        if not claim_index and "runner_job_claim ON" in statement:
            continue
        statements.append(statement)
    return statements


def open_file(path: Path, ddl: list[str], sync: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    conn.execute(f"PRAGMA synchronous = {sync}")
    for statement in ddl:
        conn.execute(statement)
    return conn


def huey_commit(conn: sqlite3.Connection, n: int) -> None:
    conn.execute("begin exclusive")
    conn.execute("insert into task (queue, data, priority) values (?, ?, ?)",
                 ("bench", DATA, 0))
    conn.execute("commit")


def ours_commit(*, int_key: bool, counters: bool) -> Callable[[sqlite3.Connection, int], None]:
    def commit(conn: sqlite3.Connection, n: int) -> None:
        now = time.time()
        key: int | str = (int(now * 1000) << 20) | (n & 0xFFFFF) if int_key else new_id(now)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(_INSERT_ONE, (key, TASK, "default", 0, "available", DATA, f"({n},)", 4,
                                   now, now))
        if counters:
            conn.execute(_ADD_ONE, (TASK, "default", QUEUE_ROW, "default"))
        conn.execute("COMMIT")
    return commit


def intake_commit(conn: sqlite3.Connection, n: int) -> None:
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    intake.write(conn, NewJob(new_id(now), TASK, "default", 0, DATA, f"({n},)", 4, now), now)
    conn.execute("COMMIT")


VARIANTS = {
    "huey": (HUEY_DDL, huey_commit),
    "ours": (our_ddl(int_key=False, claim_index=True),
             ours_commit(int_key=False, counters=True)),
    "ours, int key": (our_ddl(int_key=True, claim_index=True),
                      ours_commit(int_key=True, counters=True)),
    "ours, int key - claim": (our_ddl(int_key=True, claim_index=False),
                              ours_commit(int_key=True, counters=True)),
    "ours, int key - claim - counters": (our_ddl(int_key=True, claim_index=False),
                                         ours_commit(int_key=True, counters=False)),
    "ours, the intake (as shipped)": (our_ddl(int_key=False, claim_index=True), intake_commit),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--sync", default="FULL", choices=["FULL", "NORMAL", "OFF"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    names = list(VARIANTS)
    conns = {name: open_file(work / f"{i}.db", VARIANTS[name][0], args.sync)
             for i, name in enumerate(names)}
    for n in range(args.warmup):
        for name in names:
            VARIANTS[name][1](conns[name], n)
    times: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter
    for n in range(args.warmup, args.warmup + args.jobs):
        shift = n % len(names)
        for name in names[shift:] + names[:shift]:
            started = clock()
            VARIANTS[name][1](conns[name], n)
            times[name].append(clock() - started)
    for name in names:
        table = ("task" if name == "huey" else "runner_intake" if "intake" in name
                 else "runner_job")
        (rows,) = conns[name].execute(f"SELECT count(*) FROM {table}").fetchone()
        if rows != args.warmup + args.jobs:
            raise SystemExit(f"{name}: {rows} rows, not {args.warmup + args.jobs}")
    base = statistics.median(times["huey"])
    print(f"{args.jobs} commits each after {args.warmup} untimed, synchronous={args.sync}, "
          f"load {os.getloadavg()[0]:.2f}; SQL only, medians per commit")
    for name in names:
        median = statistics.median(times[name])
        print(f"  {name:34s} {median * 1e6:7.1f} us   huey / this {base / median:.2f}x")


if __name__ == "__main__":
    main()
