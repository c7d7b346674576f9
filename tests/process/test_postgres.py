"""``python run.py`` on PostgreSQL: jobs run end to end, LISTEN/NOTIFY wakes idle workers,
and a lost connection is retried and logged, never a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from runner import configure
from runner.config import load_settings
from runner.registry import get_huey
from runner.store.states import JobState
from tests import jobs
from tests.conftest import read_records, wait_for, write_settings
from tests.postgres_support import fresh_schema, postgres_url


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


def test_an_idle_worker_starts_a_new_job_at_once_by_notify(pg_url, tmp_path, make_worker):
    huey = producer(tmp_path, pg_url)
    # A poll every 60 s: only the NOTIFY of the enqueue can start the job in time.
    worker = make_worker(settings=postgres_settings(tmp_path, pg_url, poll_interval=60,
                                                    lease_seconds=120))
    wait_for(lambda: "ready:" in worker.output(), message="the worker to be ready")
    wait_for(lambda: huey.jobs.store.list_workers(), message="the worker to register")
    for n in range(3):
        assert jobs.add(n, 1).get(blocking=True, timeout=10) == n + 1


def test_a_lost_connection_is_retried_with_backoff_and_logged(pg_url, tmp_path, make_worker):
    huey = producer(tmp_path, pg_url)
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
