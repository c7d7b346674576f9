"""The huey storage over PostgreSQL: the same job storage, its key/value store and wake-ups.

:class:`PgJobStorage` is :class:`runner.store.job_storage.JobStorage` (claims,
outcomes, prefetch, isolation) opened on a :class:`PostgresStore`; what
differs is below it: huey's key/value store (results, revocations, locks) in
this dialect, and wake-ups by ``LISTEN``/``NOTIFY`` instead of local sockets,
so a job enqueued on one host wakes idle workers on every host. The enqueue
transaction itself sends the ``NOTIFY``; the worker's ``poll_interval`` stays
the fallback while its listening connection is down (it reconnects with backoff).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

import psycopg
from huey.constants import EmptyData

from runner.config import Settings
from runner.store.job_storage import JobStorage
from runner.store.postgres import PostgresStore, open_postgres_store
from runner.store.postgres import workers as _workers
from runner.store.postgres.connection import PgDatabase
from runner.store.states import WAITING

logger = logging.getLogger(__name__)

_WAITING = [s.value for s in WAITING]
_LIVE = " AND (expires_at IS NULL OR expires_at >= %s)"


class PgListener:
    """A thread holding one connection that ``LISTEN``s; calls ``on_wake`` per burst.

    A lost connection is logged and retried with backoff (never a crash loop);
    after reconnecting it wakes the workers once, as a notification may have
    been missed meanwhile.
    """

    def __init__(self, db: PgDatabase, on_wake: Callable[[], None]) -> None:
        self.db = db
        self.on_wake = on_wake
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None

    def start(self) -> bool:
        self._thread = threading.Thread(target=self._run, name="runner-listen", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(3.0)

    def _run(self) -> None:
        delay = 0.5
        channel = self.db.channel
        while not self._stopping.is_set():
            try:
                with self.db.connect() as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    if delay > 0.5:
                        logger.warning("%s: listening for wake-ups again", self.db.display)
                        self.on_wake()
                    delay = 0.5
                    while not self._stopping.is_set():
                        woke = False
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            woke = True
                        if woke:
                            self.on_wake()
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    return
                logger.warning("%s: wake-up connection lost (%s); polling meanwhile, "
                               "reconnecting in %.1fs", self.db.display, exc, delay)
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)


class _NoNotifier:
    """Enqueues notify inside their own transaction: nothing to send after the commit."""

    def notify(self) -> None:
        pass

    def close(self) -> None:
        pass


class PgJobStorage(JobStorage):
    """:class:`JobStorage` on PostgreSQL (see the module docstring)."""

    db: PgDatabase  # type: ignore[assignment]
    store: PostgresStore  # type: ignore[assignment]

    def _open(self, settings: Settings) -> None:
        url = settings.database_url
        assert url is not None
        # Worker threads, the claimer, the heartbeat, the scheduler, the log sink.
        self.store = open_postgres_store(url, pool_size=settings.worker.max_concurrent_tasks + 4)
        self.db = self.store.db
        self.notifier = _NoNotifier()

    def _listen(self) -> PgListener:
        return PgListener(self.db, self._on_remote_wake)

    def _running_file(self, owner: str) -> None:
        # Another host's recovery cannot read a local file: every attempt a dead
        # worker held is charged its crash (see the README's guarantee table).
        return None

    def charge_stuck(self, job_id: str, attempt: int, owner: str, message: str, *,
                     crash_limit: int) -> str | None:
        return _workers.charge_stuck(self.db, job_id, attempt, owner, message,
                                     crash_limit=crash_limit)

    # -- huey's key/value store and introspection ---------------------------------

    def queue_size(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_job WHERE state = ANY(%s) "
                             "AND run_at <= %s", (_WAITING, time.time()))[0][0]

    def enqueued_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query("SELECT data FROM runner_job WHERE state = ANY(%s) AND run_at <= %s "
                             "ORDER BY priority DESC, run_at LIMIT %s",
                             (_WAITING, time.time(), limit))
        return [bytes(r[0]) for r in rows]

    def schedule_size(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_job WHERE state = ANY(%s) "
                             "AND run_at > %s", (_WAITING, time.time()))[0][0]

    def scheduled_items(self, limit: int | None = None) -> list[bytes]:
        rows = self.db.query("SELECT data FROM runner_job WHERE state = ANY(%s) AND run_at > %s "
                             "ORDER BY run_at LIMIT %s", (_WAITING, time.time(), limit))
        return [bytes(r[0]) for r in rows]

    def put_data(self, key: str, value: bytes, is_result: bool = False) -> None:
        if key.startswith(("r:", "rt:")):
            self._revocations = True
            self._revocation_writes += 1
        self.db.write(lambda c: c.execute(
            "INSERT INTO runner_kv (key, value) VALUES (%s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = excluded.value, expires_at = NULL", (key, value)))

    def peek_data(self, key: str) -> bytes | object:
        rows = self.db.query(f"SELECT value FROM runner_kv WHERE key = %s{_LIVE}",
                             (key, time.time()))
        return bytes(rows[0][0]) if rows else EmptyData

    def peek_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        return {k: bytes(v) for k, v in self.db.query(
            f"SELECT key, value FROM runner_kv WHERE key = ANY(%s){_LIVE}",
            (list(keys), time.time()))}

    def pop_data(self, key: str) -> bytes | object:
        now = time.time()
        rows = self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key = %s RETURNING value, expires_at",
            (key,)).fetchall())
        return bytes(rows[0][0]) if rows and (rows[0][1] is None or rows[0][1] >= now) \
            else EmptyData

    def has_data_for_key(self, key: str) -> bool:
        return bool(self.db.query(f"SELECT 1 FROM runner_kv WHERE key = %s{_LIVE}",
                                  (key, time.time())))

    def delete_data(self, key: str) -> bool:
        now = time.time()
        rows = self.db.write(lambda c: c.execute(
            "DELETE FROM runner_kv WHERE key = %s RETURNING expires_at", (key,)).fetchall())
        return bool(rows) and (rows[0][0] is None or rows[0][0] >= now)

    def put_if_empty(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        now = time.time()

        def put(conn: psycopg.Connection) -> bool:
            conn.execute("DELETE FROM runner_kv WHERE key = %s AND expires_at < %s", (key, now))
            return conn.execute(
                "INSERT INTO runner_kv (key, value, expires_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (key) DO NOTHING",
                (key, value, now + ttl if ttl else None)).rowcount == 1

        return self.db.write(put)

    def incr(self, key: str, amount: int = 1) -> int:
        return self.db.write(lambda c: c.execute(
            "INSERT INTO runner_counter (key, value) VALUES (%s, %s) ON CONFLICT (key) "
            "DO UPDATE SET value = runner_counter.value + excluded.value RETURNING value",
            (key, amount)).fetchone()[0])

    def delete_counter(self, key: str) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_counter WHERE key = %s", (key,)))

    def result_store_size(self) -> int:
        return self.db.query("SELECT count(*) FROM runner_kv")[0][0]

    def result_items(self) -> dict[str, bytes]:
        return {k: bytes(v) for k, v in self.db.query("SELECT key, value FROM runner_kv")}

    def flush_results(self) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_kv"))

    def flush_counters(self) -> None:
        self.db.write(lambda c: c.execute("DELETE FROM runner_counter"))
