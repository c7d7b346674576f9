"""Bulk enqueue: ``task.map()`` and ``emit_many()`` from one script.

    .venv/bin/python bench/bench_bulk.py [--jobs 50000] [--rounds 3]

Targets: 50,000 jobs/s and 50,000 events/s. The machine is shared, so each
figure is printed beside two references measured in the same rounds (A B A B,
medians): plain huey's ``task.map()`` (one transaction per job, as huey has no
batch write) and the ceiling of SQLite itself: the same number of pre-built
rows written into our jobs table in batches of 1000, 64 rows to a statement,
at the same synchronous=FULL.
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

from huey import SqliteHuey  # noqa: E402

from bench.harness import line, rows_in  # noqa: E402
from runner import configure, emit_many, load_settings, task  # noqa: E402
from runner.config import DatabaseSection  # noqa: E402
from runner.ids import new_ids  # noqa: E402
from runner.store.sqlite.db import Database  # noqa: E402
from runner.store.sqlite.models import create_schema  # noqa: E402
from runner.store.sqlite.multirow import insert_rows  # noqa: E402

SETTINGS = """
[runner]
database = "{db}"
[worker]
queue_size = 0
[database]
synchronous = "FULL"
"""


@task()
def bulk_noop(n: int) -> None:
    pass


def ours_map(work: Path, count: int) -> float:
    directory = Path(tempfile.mkdtemp(dir=work))
    settings = directory / "settings.toml"
    settings.write_text(SETTINGS.format(db=directory / "jobs.db"))
    configure(load_settings(settings, environ={}))
    bulk_noop(-1)  # open the database before timing
    started = time.perf_counter()
    bulk_noop.map(range(count))
    rate = count / (time.perf_counter() - started)
    _check(directory / "jobs.db", "runner_job", count + 1)
    return rate


def ours_emit_many(work: Path, count: int, batch: int = 1000) -> float:
    directory = Path(tempfile.mkdtemp(dir=work))
    settings = directory / "settings.toml"
    settings.write_text(SETTINGS.format(db=directory / "jobs.db"))
    configure(load_settings(settings, environ={}))
    emit_many([("bench.bulk", {"n": -1})])
    started = time.perf_counter()
    for start in range(0, count, batch):
        emit_many([("bench.bulk", {"n": n}) for n in range(start, start + batch)])
    rate = count / (time.perf_counter() - started)
    _check(directory / "jobs.db", "runner_event", count + 1)
    return rate


def plain_map(work: Path, count: int) -> float:
    path = Path(tempfile.mkdtemp(dir=work)) / "h.db"
    huey = SqliteHuey("bulk", filename=str(path), results=False)

    @huey.task()
    def plain_noop(n: int) -> None:
        pass

    plain_noop(-1)
    started = time.perf_counter()
    plain_noop.map(range(count))
    rate = count / (time.perf_counter() - started)
    _check(path, "task", count + 1)
    return rate


def _check(db: Path, table: str, expected: int) -> None:
    """Every call wrote its row, once (the calls timed and the one that opened the file)."""
    if (found := rows_in(db, table)) != expected:
        raise SystemExit(f"{db}: {found} rows in {table}, not {expected}")


def sqlite_ceiling(work: Path, count: int, batch: int = 1000) -> float:
    """Rows built before the clock starts, written as fast as SQLite takes them: many
    rows per statement (runner.store.sqlite.multirow), at the same synchronous=FULL."""
    db = Database(Path(tempfile.mkdtemp(dir=work)) / "jobs.db",
                  DatabaseSection(synchronous="FULL"))
    db.write(create_schema)
    now = time.time()
    rows = [(i, "bulk_noop", "default", 0, "available", bytearray(os.urandom(120)), "[1]", 4,
             now, now) for i in new_ids(count)]
    columns = ("id", "task", "queue", "priority", "state", "data", "args", "max_attempts",
               "run_at", "created_at")
    started = time.perf_counter()
    for start in range(0, count, batch):
        db.write(lambda c, s=start: insert_rows(c, "runner_job", columns, rows[s:s + batch]))
    rate = count / (time.perf_counter() - started)
    db.close()
    _check(db.path, "runner_job", count)
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    small = max(1000, args.jobs // 20)  # plain huey writes one job per commit
    runs: dict[str, list[float]] = {"plain": [], "ceiling": [], "map": [], "emit": []}
    for _ in range(args.rounds):
        runs["plain"].append(plain_map(work, small))
        runs["ceiling"].append(sqlite_ceiling(work, args.jobs))
        runs["map"].append(ours_map(work, args.jobs))
        runs["emit"].append(ours_emit_many(work, args.jobs))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"bulk enqueue at synchronous=FULL, {args.jobs} jobs, {args.rounds} rounds "
          f"A B A B (medians), work dir {work}")
    print(f"  SQLite ceiling (bare rows, 64 to a statement, batches of 1000): "
          f"{med['ceiling']:,.0f} rows/s")
    print(line("task.map(), jobs/s (plain: huey's map)", med["plain"], med["map"], "/s"))
    print(f"  task.map() is {med['map'] / med['ceiling']:.0%} of the SQLite ceiling; "
          f"emit_many() in batches of 1000: {med['emit']:,.0f} events/s "
          f"({med['emit'] / med['ceiling']:.0%} of the ceiling)")


if __name__ == "__main__":
    main()
