"""Rows by a whole or shortened id, and text search patterns, on PostgreSQL.

Prefixes are matched with ``LIKE 'prefix%'`` over a ``text_pattern_ops``
index, which gives the same answer under any collation (a range of strings
would not).
"""

from __future__ import annotations

from runner.store.postgres.connection import PgDatabase
from runner.store.rows import AmbiguousId
from runner.store.tables import job_columns

__all__ = ["AmbiguousId", "JOB_COLUMNS", "SCHEDULE_ACTIVE", "contains_pattern", "escape_like",
           "lookup_id"]

#: The select list of a job row (see :func:`runner.store.tables.job_columns`).
JOB_COLUMNS = job_columns()
#: The condition of a schedule the scheduler fires (matches the partial index).
SCHEDULE_ACTIVE = "enabled = 1 AND paused = 0 AND orphaned = 0"


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards (and the escape character) taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` anywhere, wildcards literally."""
    return f"%{escape_like(text)}%"


def lookup_id(db: PgDatabase, table: str, columns: str, ident: str) -> tuple | None:
    """The row whose id is ``ident``, or starts or ends with it (unique), or None.

    Raises:
        AmbiguousId: the shortened id matches more than one row.
    """
    rows = db.query(f"SELECT {columns} FROM {table} WHERE id = %s", (ident,))
    if not rows and len(ident) >= 4:
        rows = db.query(f"SELECT {columns} FROM {table} WHERE id LIKE %s LIMIT 2",
                        (escape_like(ident) + "%",))
    if not rows and len(ident) >= 6:
        rows = db.query(f"SELECT {columns} FROM {table} WHERE id LIKE %s LIMIT 2",
                        ("%" + escape_like(ident),))
    if len(rows) > 1:
        raise AmbiguousId(ident)
    return rows[0] if rows else None
