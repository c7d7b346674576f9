"""Unique keys: which new jobs duplicate a job that still counts, read inside the enqueue.

A job may carry a ``unique_key`` with the states in which an existing job of
that key counts (default: waiting or running) and a window (``unique_for``
seconds since it was enqueued). The enqueue asks :func:`unique_duplicates`
inside its write transaction and writes only the others, so two producers can
never both find no job and both insert one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from runner.store.job_rows import NewJob
from runner.store.states import LIVE, sql_in


def unique_duplicates(conn: sqlite3.Connection, jobs: Sequence[NewJob],
                      now: float) -> dict[str, str]:
    """New jobs whose unique key names a job that counts: new id -> that job's id.

    A job counts while it is in the new job's ``unique_states`` (default: waiting
    or running) and, with ``unique_for``, was created less than that many seconds
    ago. Read inside the caller's write transaction, so two producers can never
    both find no job and both insert. A key given twice in one batch keeps the first.
    """
    found: dict[str, str] = {}
    kept: dict[str, str] = {}
    for job in jobs:
        key = job.unique_key
        if key is None:
            continue
        if key in kept:
            found[job.id] = kept[key]
            continue
        states = sql_in(job.unique_states or LIVE)
        window, params = "", [key]
        if job.unique_for is not None:
            window = " AND created_at > ?"
            params.append(now - job.unique_for)
        row = conn.execute(
            f"SELECT id FROM runner_job INDEXED BY runner_job_unique_key WHERE unique_key = ? "
            f"AND state IN {states}{window} ORDER BY created_at DESC LIMIT 1",
            params).fetchone()
        if row is not None:
            found[job.id] = row[0]
        else:
            kept[key] = job.id
    return found
