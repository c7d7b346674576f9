"""INSERT statements of many rows each, for the bulk writers (jobs, events).

Measured with callgrind over a 50,000-job ``map()``, running a one-row
statement through ``executemany`` costs more than SQLite's own insert: each run
of a statement opens and closes a cursor on the table and on each of its
indexes. A statement of 64 rows opens them once (SQLite's instructions per row
fall from 44,000 to 17,000). The last rows of a batch go in statements of 32,
16, ..., 1 rows, so a connection caches at most 7 statements of a kind.

Python's ``sqlite3`` passes ``None`` and ``bytes`` values through its adapter
lookup, which raises and formats an AttributeError inside for each one (about
3,000 instructions a value, more than SQLite spends on it): callers leave out
the columns that are NULL in every row (they default to NULL) and pass
payloads as ``bytearray``, a type the module binds directly (as the same BLOB).
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from collections.abc import Sequence

#: Rows per statement: 64 x 14 values stays under 999, SQLite's limit on variables
#: before 3.32.
ROWS_PER_INSERT = 64


@functools.cache
def insert_sql(table: str, columns: tuple[str, ...], count: int) -> str:
    """One INSERT of ``count`` rows of ``columns`` into ``table``."""
    values = f"({','.join('?' * len(columns))})"
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
            + ",".join([values] * count))


def insert_rows(conn: sqlite3.Connection, table: str, columns: tuple[str, ...],
                rows: Sequence[tuple]) -> None:
    """Insert ``rows`` (tuples in the order of ``columns``), up to
    :data:`ROWS_PER_INSERT` rows per statement."""
    chain = itertools.chain.from_iterable
    start, count, size = 0, len(rows), ROWS_PER_INSERT
    while start < count:
        while count - start < size:
            size //= 2
        sql = insert_sql(table, columns, size)
        while count - start >= size:
            conn.execute(sql, tuple(chain(rows[start:start + size])))
            start += size
