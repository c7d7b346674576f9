"""``python run.py`` on PostgreSQL: jobs run end to end, LISTEN/NOTIFY wakes idle workers,
and a lost connection is retried and logged, never a crash."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from runner import configure, huey_consumer
from runner.errors import DatabaseUnavailable
from runner.registry import get_huey
from runner.settings_loader import load_settings
from runner.store.postgres import connection
from runner.store.rows import JobFilter
from runner.store.states import JobState
from runner.testing import drain
from tests import jobs
from tests.conftest import ROOT, read_records, run_short_jobs_first, wait_for, write_settings
from tests.postgres_support import fresh_schema, postgres_url, role_without_create


def postgres_settings(directory: Path, url: str, *, name: str = "settings.toml",
                      **worker: object) -> Path:
    """Test settings whose database is ``url`` (``queue_type = "postgres"``)."""
    path = write_settings(directory, name=name, worker={"queue_type": "postgres", **worker})
    path.write_text(path.read_text().replace('database = "jobs.db"', f'database = "{url}"'))
    return path


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    """A schema of its own; its connections are named after it, so a test can cut them."""
    with fresh_schema() as url:
        schema = url.rsplit("%3D", 1)[1]
        yield f"{url}&application_name={schema}"
        huey = get_huey()
        if huey.jobs is not None:
            huey.jobs.db.close()


def producer(directory: Path, url: str):  # noqa: ANN201 - the runner's huey
    """Point this process (the producer) at the database."""
    configure(load_settings(postgres_settings(directory, url, name="producer.toml"),
                            environ={}))
    return get_huey()


def test_run_py_runs_jobs_end_to_end_on_postgres(pg_url, tmp_path, make_worker, record_file):
    huey = producer(tmp_path, pg_url)
    worker = make_worker(settings=postgres_settings(tmp_path, pg_url),
                         TEST_RECORD_FILE=str(record_file))
    ids = [jobs.short_work(n).id for n in range(200)]
    assert jobs.add(20, 22).get(blocking=True, timeout=20) == 42
    store = huey.jobs.store
    wait_for(lambda: store.count_in_state(JobState.COMPLETED) == len(ids) + 1, timeout=30,
             message="every job to complete")
    assert sorted(int(line.split()[0]) for line in read_records(record_file)) == list(range(200))
    [row] = store.list_workers()
    assert row.state == "running" and row.concurrency == 4
    assert worker.terminate() == 0
    assert "Traceback" not in worker.output()


def test_run_py_database_option_takes_a_postgresql_url(pg_url, tmp_path, make_worker):
    # Given the settings of the SQLite file a user moved from (queue_type left at sqlite)
    huey = producer(tmp_path, pg_url)
    # When the worker is pointed at the server with --database
    worker = make_worker("--database", pg_url, settings=write_settings(tmp_path))
    # Then it runs the server's jobs, as the dashboard's --db reads them
    wait_for(lambda: huey.jobs.store.list_workers() or worker.proc.poll() is not None,
             message="the worker to register on the server")
    assert worker.proc.poll() is None, worker.output()
    assert jobs.add(2, 3).get(blocking=True, timeout=20) == 5
    assert worker.terminate() == 0


def test_an_idle_worker_starts_a_new_job_at_once_by_notify(pg_url, tmp_path, make_worker):
    huey = producer(tmp_path, pg_url)
    # A poll every 60 s: only the NOTIFY of the enqueue can start the job in time.
    worker = make_worker(settings=postgres_settings(tmp_path, pg_url, poll_interval=60,
                                                    lease_seconds=120))
    wait_for(lambda: "ready:" in worker.output(), message="the worker to be ready")
    wait_for(lambda: huey.jobs.store.list_workers(), message="the worker to register")
    for n in range(3):
        assert jobs.add(n, 1).get(blocking=True, timeout=10) == n + 1


def test_revoke_reaches_a_job_waiting_in_a_workers_prefetch_buffer(pg_url, tmp_path,
                                                                   make_worker):
    huey = producer(tmp_path, pg_url)
    slow, later = jobs.sleep_then_record(1.0, "slow"), jobs.record_run("before")
    make_worker(settings=postgres_settings(tmp_path, pg_url, max_concurrent_tasks=1,
                                           prefetch=2))
    store = huey.jobs.store

    def state(result) -> str:  # noqa: ANN001 - a huey result
        return store.get_job(result.id).state

    wait_for(lambda: state(slow) == "completed" and state(later) == "completed",
             message="the first jobs (the worker's last claim found no revocation)")
    run_short_jobs_first()  # it claims ahead only once its jobs read as short
    # Written in one transaction, so one claim takes both: the slow job runs, the quick
    # one waits behind it in the buffer.
    slow, quick = huey.enqueue_many([jobs.sleep_then_record.s(1.0, "slow"),
                                     jobs.record_run.s("quick")])
    wait_for(lambda: state(slow) == state(quick) == "executing", message="both claimed")
    quick.revoke()
    wait_for(lambda: state(quick) in ("cancelled", "completed"), message="the quick job")
    assert state(quick) == "cancelled"
    assert state(slow) == "completed"


def test_a_lost_connection_is_retried_with_backoff_and_logged(pg_url, tmp_path, make_worker):
    producer(tmp_path, pg_url)
    worker = make_worker(settings=postgres_settings(tmp_path, pg_url))
    assert jobs.add(1, 1).get(blocking=True, timeout=20) == 2
    name = pg_url.rsplit("application_name=", 1)[1]
    with psycopg.connect(postgres_url(), autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = %s AND pid <> pg_backend_pid()",
                            (name,)).fetchone()[0]
    assert cut >= 2  # the worker's pool and its LISTEN connection (and this producer's)
    assert jobs.add(2, 2).get(blocking=True, timeout=30) == 4
    wait_for(lambda: "wake-up connection lost" in worker.output(),
             message="the lost LISTEN connection to be logged")
    assert worker.proc.poll() is None
    assert worker.terminate() == 0


class _Relay:
    """A TCP relay on a port of its own to the test server: the "server" is down (the
    port refuses) until :meth:`start`, as a database host that boots after its workers."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self.port = self.sock.getsockname()[1]
        self._closing = False
        self.open: list[socket.socket] = []

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{self.port}"))

    def start(self) -> None:
        self.sock.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._closing = True
        self.sock.close()
        for conn in self.open:
            conn.close()


class _Outage(_Relay):
    """A relay whose "server" can go away (:meth:`cut`: every connection dropped, new ones
    closed at once) and come back (:meth:`resume`)."""

    cut_off = False

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            if self.cut_off:
                client.close()
                continue
            server = socket.create_connection(self.target)
            self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def cut(self) -> None:
        self.cut_off = True
        dropped, self.open = self.open, []
        for conn in dropped:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def resume(self) -> None:
        self.cut_off = False


def test_a_job_that_ran_while_the_server_was_away_completes_once(pg_url, tmp_path, monkeypatch,
                                                                 record_file):
    # An outage longer than the store waits for the server, shortened to a second.
    monkeypatch.setattr(connection, "WRITE_DEADLINE", 1.0)
    # As if it had waited in the claim-ahead buffer: it reads and clears its revocation.
    monkeypatch.setattr(huey_consumer, "_FRESH_CLAIM", float("-inf"))
    relay = _Outage(postgres_url())
    relay.start()
    try:
        huey = producer(tmp_path, relay.url(pg_url))
        huey.revoke_by_id("no-such-job")  # a revocation exists: clearing one is a write
        result = jobs.awaits_a_while("ran", 1.0)

        def outage() -> None:
            wait_for(lambda: any("start" in line for line in read_records(record_file)),
                     message="the job to start")
            relay.cut()
            wait_for(lambda: "ran end" in read_records(record_file), message="the job to end")
            # Past the deadline of the writes that follow the job, and past the pool's
            # wait for a connection (10 s), which a write waits out before its deadline.
            time.sleep(12)
            relay.resume()

        cutter = threading.Thread(target=outage)
        cutter.start()
        try:
            drain()
        except DatabaseUnavailable:
            pass  # drain's own write of the buffered completion, while the server is away
        cutter.join()
        drain()  # the next write, the server back
        store = huey.jobs.store
        row = store.get_job(result.id)
        assert (row.state, row.attempt) == ("completed", 1), row.reason
        assert store.job_errors(result.id) == []
        assert read_records(record_file) == [f"ran start {result.id}", "ran end"]
    finally:
        relay.close()


def test_a_worker_started_before_its_database_waits_for_it_then_runs_jobs(pg_url, tmp_path,
                                                                          make_worker):
    relay = _Relay(postgres_url())
    try:
        worker = make_worker(settings=postgres_settings(tmp_path, relay.url(pg_url)))
        wait_for(lambda: "database not reachable at start-up" in worker.output(), timeout=30,
                 message="the failed first connection to be logged")
        assert worker.proc.poll() is None  # waiting, not exited 73
        relay.start()
        producer(tmp_path, pg_url)
        assert jobs.add(3, 4).get(blocking=True, timeout=60) == 7
        assert worker.terminate() == 0
    finally:
        relay.close()


def test_a_worker_waiting_for_its_database_stops_cleanly_on_sigterm(pg_url, tmp_path,
                                                                    make_worker):
    relay = _Relay(postgres_url())  # never started: the server stays down
    try:
        worker = make_worker(settings=postgres_settings(tmp_path, relay.url(pg_url)))
        wait_for(lambda: "database not reachable at start-up" in worker.output(), timeout=30,
                 message="the failed first connection to be logged")
        assert worker.terminate() == 0
        assert "Traceback" not in worker.output()
    finally:
        relay.close()


HOST_JOBS = 20_000


@pytest.mark.chaos
@pytest.mark.timeout(600)
def test_three_hosts_share_one_database_and_a_killed_one_loses_nothing(
        pg_url, tmp_path, make_worker, record_file):
    huey = producer(tmp_path, pg_url)
    store = huey.jobs.store
    # crash_limit 0: every job must finish however often a kill catches it.
    settings = postgres_settings(tmp_path, pg_url, crash_limit=0, lease_seconds=3,
                                 heartbeat_interval=0.5)
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_jobs"]'))

    def host(name: str):  # noqa: ANN202 - a WorkerProcess
        return make_worker(settings=settings, RUNNER_NODE_NAME=name,
                           TEST_RECORD_FILE=str(record_file))

    jobs.short_work.map(range(HOST_JOBS), batch_size=2000)
    workers = {name: host(name) for name in ("host-a", "host-b", "host-c")}
    done = JobFilter(task=jobs.short_work.task_name, state=JobState.COMPLETED.value)
    for threshold in (HOST_JOBS // 5, HOST_JOBS // 2):  # killed twice, restarted twice
        wait_for(lambda t=threshold: store.count_jobs(done) >= t, timeout=240, interval=0.2,
                 message=f"{threshold} jobs to complete")
        workers["host-b"].kill()
        workers["host-b"] = host("host-b")
    wait_for(lambda: store.count_jobs(done) == HOST_JOBS, timeout=300, interval=0.5,
             message="every job to complete")

    runs: dict[int, list[int]] = {}
    for line in read_records(record_file):
        if line == "q":  # quarter_hourly of tests.sched_jobs, when a quarter hour passed
            continue
        n, attempt = line.split()
        runs.setdefault(int(n), []).append(int(attempt))
    assert set(runs) == set(range(HOST_JOBS)), "every job ran"
    for n, attempts in runs.items():
        # Again only as a new attempt, after the kill interrupted the one before.
        assert len(attempts) == len(set(attempts)), f"job {n} ran twice in one attempt"
    assert store.count_jobs(JobFilter(task=jobs.short_work.task_name)) == HOST_JOBS
    hosts = {w.host for w in store.list_workers(include_stopped=True)}
    assert hosts == {"host-a", "host-b", "host-c"}

    # Per-second schedules: each slot fired once, by one of the three schedulers.
    fired = [r for r in store.schedule_runs("every_second", limit=10_000) if not r.manual]
    slots = [r.slot for r in fired]
    assert len(slots) >= 5 and len(slots) == len(set(slots))
    enqueued = [r.job_id for r in fired if r.job_id]
    assert len(enqueued) == len(set(enqueued))
    assert store.count_jobs(JobFilter(task="every_second")) == len(enqueued)
    for worker in workers.values():
        assert worker.terminate() == 0


def test_a_stuck_job_fails_by_its_timeout_and_the_queue_keeps_flowing(
        pg_url, tmp_path, make_worker, record_file):
    huey = producer(tmp_path, pg_url)
    stuck = jobs.block_in_c("stuck")
    others = [jobs.add(i, i) for i in range(10)]
    make_worker(settings=postgres_settings(tmp_path, pg_url, max_concurrent_tasks=1,
                                           stuck_grace=1),
                TEST_RECORD_FILE=str(record_file))
    assert [r.get(blocking=True, timeout=30) for r in others] == [2 * i for i in range(10)]
    row = huey.jobs.store.get_job(stuck.id)
    assert (row.state, row.crashes) == (JobState.DEAD, 0)  # retry_limit=0: no crash_limit runs
    assert "past its 1s timeout" in row.error_message


def test_the_cli_reads_and_checks_a_postgres_database(pg_url, tmp_path, make_worker):
    producer(tmp_path, pg_url)
    settings = postgres_settings(tmp_path, pg_url)
    worker = make_worker(settings=settings)
    assert jobs.add(1, 2).get(blocking=True, timeout=20) == 3

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                               *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert worker.proc.poll() is None
    listed = cli("workers")
    assert listed.returncode == 0 and ":" in listed.stdout, listed.stderr
    shown = cli("jobs", "--state", "completed")
    assert shown.returncode == 0 and "(1 of 1 job)" in shown.stdout, shown.stdout
    health = cli("health")
    assert health.returncode == 0, health.stdout + health.stderr
    checked = cli("check")
    assert checked.returncode == 0 and "postgresql://" in checked.stdout, checked.stderr
    pruned = cli("prune")  # no file here to vacuum or WAL to checkpoint: nothing said of them
    assert pruned.returncode == 0 and pruned.stdout.startswith("deleted: "), pruned.stderr
    assert "vacuumed" not in pruned.stdout and "WAL" not in pruned.stdout, pruned.stdout


def _run(settings: Path, *args: str) -> subprocess.CompletedProcess:
    """``python run.py`` (no args) or ``python -m runner ARGS`` on ``settings``, to its end."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    command = ([sys.executable, "-m", "runner", "--settings", str(settings), *args] if args
               else [sys.executable, str(ROOT / "run.py"), "--settings", str(settings)])
    return subprocess.run(command, capture_output=True, text=True, timeout=60,
                          env={**environ, "PYTHONPATH": str(ROOT)})


def test_a_malformed_url_stops_the_worker_and_the_cli_with_exit_78_and_no_password(tmp_path):
    settings = postgres_settings(tmp_path, "postgresql://jobs:pg-url-password@[::1/jobs")
    for args in [(), ("check",), ("jobs",)]:
        done = _run(settings, *args)
        output = done.stdout + done.stderr
        assert done.returncode == 78, (args, output)
        assert "not a valid PostgreSQL URL" in output and "jobs:***@" in output, output
        assert "Traceback" not in output and "pg-url-password" not in output, output


def test_a_worker_whose_role_may_not_create_tables_exits_73_instead_of_waiting(tmp_path):
    with fresh_schema() as url, role_without_create(url) as limited:
        done = _run(postgres_settings(tmp_path, limited))
        output = done.stdout + done.stderr
        assert done.returncode == 73, output
        assert "permission denied for schema" in output and "Traceback" not in output, output
        assert "role-password" not in output


def test_a_table_lock_held_past_the_lease_does_not_make_a_live_worker_dead(
        pg_url, tmp_path, make_worker, record_file):
    # Given two hosts, one running a job, and a lease of 2 s
    huey = producer(tmp_path, pg_url)
    store = huey.jobs.store
    settings = postgres_settings(tmp_path, pg_url, lease_seconds=2, heartbeat_interval=0.5)
    for name in ("host-a", "host-b"):
        make_worker(settings=settings, RUNNER_NODE_NAME=name, TEST_RECORD_FILE=str(record_file))
    wait_for(lambda: len(store.list_workers()) == 2, message="both hosts to register")
    slow = jobs.sleep_then_record(8, "slow")
    wait_for(lambda: store.get_job(slow.id).state == JobState.EXECUTING,
             message="the job to start")
    # When a lock (VACUUM FULL's) holds every heartbeat back for longer than the lease
    with psycopg.connect(pg_url) as locker:
        locker.execute("LOCK TABLE runner_job IN ACCESS EXCLUSIVE MODE")
        # Held until the job's lease, frozen by the lock, has lapsed on the server's clock
        # and both hosts' heartbeats wait on the lock
        wait_for(lambda: locker.execute(
            "SELECT extract(epoch FROM clock_timestamp()) > lease_expires_at + 0.5 "
            "AND (SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted "
            "AND relation = 'runner_job'::regclass) >= 2 "
            "FROM runner_job WHERE id = %s", (slow.id,)).fetchone()[0],
            message="the lease to lapse with both heartbeats held back")
    # Then the job runs once, to the end, and no worker is declared dead
    wait_for(lambda: store.get_job(slow.id).state == JobState.COMPLETED, timeout=30,
             message="the job to complete")
    row = store.get_job(slow.id)
    assert (row.attempt, row.crashes) == (1, 0)
    assert store.job_errors(slow.id) == []
    assert read_records(record_file) == ["slow"]


def test_commands_and_health_give_up_on_a_lock_held_past_busy_timeout(pg_url, tmp_path):
    # Given a database whose jobs table another session holds locked (a migration, a
    # LOCK TABLE typed in psql), and a bound of 1 s on how long a command waits for it
    producer(tmp_path, pg_url)
    queued = jobs.add.schedule((1, 2), delay=600)
    settings = postgres_settings(tmp_path, pg_url)
    settings.write_text(settings.read_text().replace("busy_timeout = 10", "busy_timeout = 1"))

    def command(*args: str) -> tuple[subprocess.CompletedProcess, float]:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                               *args], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        return done, time.monotonic() - started

    holder = psycopg.connect(pg_url)
    holder.execute("LOCK TABLE runner_job IN ACCESS EXCLUSIVE MODE")
    try:
        # When a monitoring probe asks: it is told the database does not answer, at once
        health, took = command("health")
        assert health.returncode == 1, health.stdout + health.stderr
        assert health.stdout.startswith("unhealthy: database: "), health.stdout
        assert "waited 1s for a lock" in health.stdout and took < 15, (took, health.stdout)
        # and every command a person types gives up saying why, with exit 75
        for args in (["jobs"], ["show", queued.id], ["stats"], ["cancel", queued.id],
                     ["enqueue", "tests.jobs.add", "--args", "[1, 1]"]):
            done, took = command(*args)
            assert done.returncode == 75, (args, done.stdout, done.stderr)
            assert "waited 1s for a lock" in done.stderr and took < 15, (args, took, done.stderr)
            assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1
    finally:
        holder.close()
    # Then, once the lock is released, the same commands read and write as before
    shown, _ = command("show", queued.id)
    assert shown.returncode == 0 and "scheduled" in shown.stdout, shown.stdout + shown.stderr
