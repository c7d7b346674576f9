"""What a lookup by short id costs: the id's end (what listings print) against its start.

    .venv/bin/python bench/short_id_lookup.py [--jobs 200000]

Seeds a jobs file (bench/seed_dashboard.py, no logs), then runs the statements
of ``runner.store.sqlite.db.lookup_id`` for a whole id, a prefix and the printed
short form (the id's last 12 characters), and one variant of the last: the
suffix matched over the id index alone (covering), the rows then read by rowid.
Counts SQLite VM steps (in hundreds, a figure the load of the machine does not
move) and times each statement (best of five, warm cache).

Figures of one run (2 shared cores): at 200,000 jobs (76 MB) the printed short
form costs 800,000 VM steps and 30 ms (20 ms over the id index alone), a whole
id or a prefix 0.01 ms; at 1,000,000 jobs (382 MB) 4,000,000 steps and 225 ms
(154 ms over the index alone). The cost grows with the table: the short form is
the id's random end, which no index orders, and an index that would (on the
reversed id) is one more write on every enqueue.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.seed_dashboard import seed  # noqa: E402
from runner.store.sqlite.queries import JOB_COLUMNS  # noqa: E402

STATEMENTS = {
    "whole id": "SELECT {cols} FROM runner_job WHERE id = ?",
    "prefix (range)": "SELECT {cols} FROM runner_job WHERE id >= ? AND id < ? LIMIT 2",
    "short form (LIKE '%tail')": "SELECT {cols} FROM runner_job WHERE id LIKE ? LIMIT 2",
    "short form, id index only": (
        "SELECT {cols} FROM runner_job WHERE rowid IN (SELECT rowid FROM runner_job "
        "INDEXED BY sqlite_autoindex_runner_job_1 WHERE id LIKE ? LIMIT 2)"),
}


def measure(conn: sqlite3.Connection, sql: str, params: tuple) -> tuple[int, float, int]:
    steps = 0

    def step() -> int:
        nonlocal steps
        steps += 1
        return 0

    conn.set_progress_handler(step, 100)
    rows = conn.execute(sql, params).fetchall()
    conn.set_progress_handler(None, 0)
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        conn.execute(sql, params).fetchall()
        best = min(best, time.perf_counter() - began)
    return steps * 100, best, len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jobs.db"
        seed(path, jobs=args.jobs, logs=0)
        conn = sqlite3.connect(path)
        size = conn.execute("SELECT page_count * page_size FROM pragma_page_count, "
                            "pragma_page_size").fetchone()[0]
        (ident,) = conn.execute("SELECT id FROM runner_job ORDER BY rowid "
                                "LIMIT 1 OFFSET ?", (args.jobs // 2,)).fetchone()
        params = {"whole id": (ident,), "prefix (range)": (ident[:12], ident[:12] + "\uffff"),
                  "short form (LIKE '%tail')": ("%" + ident[-12:],),
                  "short form, id index only": ("%" + ident[-12:],)}
        print(f"{args.jobs:,} jobs, file {size / 1e6:.0f} MB")
        for name, sql in STATEMENTS.items():
            steps, took, found = measure(conn, sql.format(cols=JOB_COLUMNS), params[name])
            plan = " / ".join(r[3] for r in conn.execute(
                "EXPLAIN QUERY PLAN " + sql.format(cols=JOB_COLUMNS), params[name]))
            print(f"  {name:28} {steps:>12,} VM steps {took * 1000:9.2f} ms  "
                  f"{found} row(s)  [{plan}]")


if __name__ == "__main__":
    main()
