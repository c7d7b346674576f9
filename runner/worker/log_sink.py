"""A logging handler that keeps records in ``runner_log``, written in batches.

``emit`` only appends a tuple to a queue (a few microseconds, no I/O); a writer
thread inserts everything queued every ``flush_interval`` seconds in one
transaction. Caps: each message is cut at ``message_max_bytes``; a job keeps at
most ``job_max_bytes`` (a marker line says when later lines were dropped); the
table keeps at most ``max_rows`` rows, oldest removed first. When the disk is
full the batch is dropped (and counted), never retried in a loop.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque

from runner.printable import storable
from runner.runner_huey import current_job
from runner.store.backend import Store
from runner.store.rows import LogTuple
from runner.worker.log_config import LoggingSection

logger = logging.getLogger(__name__)

_MAX_QUEUE = 100_000
_TRACKED_JOBS = 20_000


class LogSink(logging.Handler):
    """Handler + writer thread; ``start()``, ``stop()``, ``flush()``."""

    def __init__(self, store: Store, section: LoggingSection, *,
                 worker: str | None = None) -> None:
        super().__init__(logging.getLevelName(section.store_level.upper()))
        self.store = store
        self.section = section
        self.worker = worker
        self.dropped = 0
        self._queue: deque[LogTuple] = deque()
        self._job_bytes: OrderedDict[str, int] = OrderedDict()
        self._since_trim = 0
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writer_ident: int | None = None
        self._last_warning = 0.0

    def configure(self, section: LoggingSection) -> None:
        """Take new caps and level (SIGHUP)."""
        self.section = section
        self.setLevel(logging.getLevelName(section.store_level.upper()))

    # -- producer side ---------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        if threading.get_ident() == self._writer_ident or record.name == __name__:
            return
        job_id = getattr(record, "job_id", False)
        task = getattr(record, "task_name", None)
        if job_id is False:
            job = current_job()
            job_id, task = (job.id, job.task) if job else (None, None)
        if job_id is None and not self.section.store_worker_records:
            return
        if len(self._queue) >= _MAX_QUEUE:
            self.dropped += 1
            return
        try:
            message = record.getMessage()
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                message = f"{message}\n{record.exc_text}"
            message = storable(message)
        except Exception:
            self.handleError(record)
            return
        self._queue.append((record.created, record.levelno, record.name, message,
                            job_id, task, self.worker))

    # -- writer side -----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="runner-logsink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued and stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        self.flush()

    def flush(self) -> None:
        """Write everything queued now, in this thread."""
        while self._write_batch():
            pass

    def _run(self) -> None:
        self._writer_ident = threading.get_ident()
        while not self._stop.wait(self.section.flush_interval):
            while self._write_batch() and not self._stop.is_set():
                pass

    def _write_batch(self) -> bool:
        """Write one batch; True when more records are queued."""
        with self._write_lock:
            batch: list[LogTuple] = []
            while self._queue and len(batch) < 5000:
                batch.append(self._queue.popleft())
            rows = self._apply_caps(batch)
            if not rows:
                return bool(self._queue)
            section = self.section
            self._since_trim += len(rows)
            trim = section.max_rows > 0 and self._since_trim >= max(100, section.max_rows // 20)

            try:
                self.store.write_logs(
                    rows, trim_to=section.max_rows if trim else 0, deadline=5.0)
                if trim:
                    self._since_trim = 0
            except Exception as exc:
                self.dropped += len(rows)
                if time.monotonic() - self._last_warning > 60:
                    self._last_warning = time.monotonic()
                    logger.warning("could not store %d log records (%s); dropped %d so far",
                                   len(rows), exc, self.dropped)
            if self._queue and not self._stop.is_set():
                self._write_batch_later()

    def _write_batch_later(self) -> None:
        # More than one batch was queued: write the rest at once (outside the lock).
        threading.Thread(target=self._write_batch, daemon=True).start() \
            if threading.get_ident() != self._writer_ident else None

    def _apply_caps(self, batch: list[LogTuple]) -> list[LogTuple]:
        section = self.section
        limit, cap = section.message_max_bytes, section.job_max_bytes
        rows: list[LogTuple] = []
        for created, level, name, message, job_id, task, worker in batch:
            if limit and len(message) > limit:
                message = message[:limit] + f"... [cut at {limit} bytes]"
            if job_id is not None and cap:
                used = self._job_bytes.get(job_id, 0)
                if used < 0:
                    continue
                if used + len(message) > cap:
                    self._job_bytes[job_id] = -1
                    message = (f"[further log lines of this job are not stored: job_max_bytes "
                               f"({cap}) reached]")
                    level, name = logging.WARNING, __name__
                else:
                    self._job_bytes[job_id] = used + len(message)
                self._job_bytes.move_to_end(job_id)
                if len(self._job_bytes) > _TRACKED_JOBS:
                    self._job_bytes.popitem(last=False)
            rows.append((created, level, name, message, job_id, task, worker))
        return rows
