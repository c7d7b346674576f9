"""Log records in the storage seam: written in batches, read and tailed.

Part of :class:`runner.store.backend.Store` (see that module for the whole seam).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from runner.store.rows import LogFilter, LogRow, LogTuple


class LogsStore(Protocol):
    """The log records workers capture."""

    def write_logs(self, rows: Sequence[LogTuple], *, trim_to: int = 0,
                   deadline: float = 5.0) -> None:
        """Insert records in one transaction; with ``trim_to``, keep about that many newest."""
        ...

    def read_logs(self, filters: LogFilter | None = None, *, after_id: int = 0,
                  limit: int = 200) -> list[LogRow]:
        """Records after ``after_id``, oldest first; with ``after_id`` 0, the last ``limit``."""
        ...

    def tail_logs(self, *, after_id: int = 0, job_id: str | None = None, min_level: int = 0,
                  text: str | None = None, limit: int = 500) -> list[LogRow]:
        """Stored log records after ``after_id``, oldest first; with 0, the newest ``limit``."""
        ...

    def job_log_bytes(self, job_id: str) -> int:
        """Message bytes stored for one job."""
        ...
