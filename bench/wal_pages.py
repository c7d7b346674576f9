"""Where an enqueue's commit writes: WAL frames per commit, by table and index.

    .venv/bin/python bench/wal_pages.py [--jobs 2000] [--backlog 0] [--queue-size 0]

Enqueues ``--jobs`` single jobs from this script (one commit each) with the WAL
never checkpointed, then reads the WAL file: each frame names the page it
writes, and SQLite's ``dbstat`` names the table or index that owns each page.
Plain huey's enqueue is measured the same way for reference. Durability does
not change the frame count, only how often they are synced.
"""

from __future__ import annotations

import argparse
import collections
import os
import sqlite3
import struct
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SETTINGS = """
[runner]
database = "{db}"
[worker]
queue_size = {queue_size}
[database]
synchronous = "FULL"
"""


def read_wal(path: Path) -> list[list[int]]:
    """The pages written by each commit in a WAL file, in order."""
    data = path.read_bytes()
    if len(data) < 32:
        return []
    page_size = struct.unpack(">I", data[8:12])[0]
    salt = data[16:24]
    commits: list[list[int]] = []
    pages: list[int] = []
    offset = 32
    while offset + 24 + page_size <= len(data):
        page, size_after = struct.unpack(">II", data[offset:offset + 8])
        if data[offset + 8:offset + 16] != salt:
            break  # left over from before the last restart
        pages.append(page)
        if size_after:
            commits.append(pages)
            pages = []
        offset += 24 + page_size
    return commits


def owners(db: Path) -> dict[int, str]:
    """Page number -> table or index name (after a checkpoint, so dbstat sees every page)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
    finally:
        conn.close()


def report(label: str, wal: Path, db: Path) -> None:
    commits = read_wal(wal)
    names = owners(db)
    by_name: collections.Counter[str] = collections.Counter()
    for pages in commits:
        for page in pages:
            by_name[names.get(page, "(page 1 / freelist / other)" if page == 1 else "other")] += 1
    n = len(commits) or 1
    total = sum(len(p) for p in commits)
    print(f"{label}: {len(commits)} commits, {total / n:.2f} WAL frames per commit")
    for name, count in by_name.most_common():
        print(f"    {count / n:6.2f}  {name}")


def ours(work: Path, jobs: int, backlog: int, queue_size: int) -> None:
    settings = work / "settings.toml"
    settings.write_text(SETTINGS.format(db=work / "jobs.db", queue_size=queue_size))
    from runner import configure, load_settings, task

    configure(load_settings(settings, environ={}))

    @task()
    def wal_noop(n: int) -> None:
        pass

    if backlog:
        wal_noop.map(range(backlog))
    wal_noop(-1)
    storage = wal_noop.huey.storage  # type: ignore[attr-defined]
    conn = storage.db.connection()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    for n in range(jobs):
        wal_noop(n)
    report("ours", work / "jobs.db-wal", work / "jobs.db")


def plain(work: Path, jobs: int) -> None:
    from huey import SqliteHuey

    huey = SqliteHuey("wal", filename=str(work / "h.db"), results=False)

    @huey.task()
    def plain_noop(n: int) -> None:
        pass

    plain_noop(-1)
    conn = huey.storage.conn
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    for n in range(jobs):
        plain_noop(n)
    report("plain huey", work / "h.db-wal", work / "h.db")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--backlog", type=int, default=0,
                        help="jobs already waiting before the measured enqueues")
    parser.add_argument("--queue-size", type=int, default=0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wal-pages-"))
    os.environ.pop("RUNNER_SETTINGS", None)
    plain(work, args.jobs)
    ours(work, args.jobs, args.backlog, args.queue_size)


if __name__ == "__main__":
    main()
