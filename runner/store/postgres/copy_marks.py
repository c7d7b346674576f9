"""How far ``migrate-to`` copies read a SQLite file's jobs and events, kept in ``runner_meta``.

A job or event a copy wrote into PostgreSQL may run, finish and be pruned here;
the file still holds it, and a copy run again must not bring it back (a job would
run twice). Each copy records, in the transaction that writes a batch, the file's
rowid up to which it has read (``copied_jobs_read``, ``copied_events_read``). The
retention pass, in the transaction that prunes, moves that mark to
``copied_jobs_upto`` (``copied_events_upto``): a later copy reads the file past it
only. Rows before it were seen by an earlier copy: each was written then (and is
here still, or was pruned), or was left behind on purpose (finished before the
history window, or a duplicate of a unique key held here).
"""

from __future__ import annotations

import psycopg

from runner.store.postgres.connection import PgDatabase

#: What a copy reads by rowid and retention prunes.
PARTS = ("jobs", "events")


def up_to(db: PgDatabase) -> tuple[int, int]:
    """(jobs, events): the rowids in the file a copy reads past (0: all of it)."""
    found = dict(db.query("SELECT key, value FROM runner_meta WHERE key = ANY(%s)",
                          ([f"copied_{p}_upto" for p in PARTS],)))
    return int(found.get("copied_jobs_upto", 0)), int(found.get("copied_events_upto", 0))


def mark_read(conn: psycopg.Connection, part: str, rowid: int) -> None:
    """A copy has read (and written what it would of) the file's ``part`` up to ``rowid``."""
    conn.execute("INSERT INTO runner_meta (key, value) VALUES (%s, %s) ON CONFLICT (key) "
                 "DO UPDATE SET value = greatest(runner_meta.value::bigint, "
                 "excluded.value::bigint)::text", (f"copied_{part}_read", str(rowid)))


def pruned(conn: psycopg.Connection, part: str) -> None:
    """Rows of ``part`` were pruned (in this transaction): later copies read past the mark.
    Nothing happens where no copy was made."""
    conn.execute("INSERT INTO runner_meta (key, value) SELECT %s, value FROM runner_meta "
                 "WHERE key = %s ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (f"copied_{part}_upto", f"copied_{part}_read"))
