"""Workers on hosts whose clocks disagree, sharing one PostgreSQL or Redis store.

Each worker process here runs with its wall clock shifted (``tests/clock_support.py``)
and a node name of its own, as a second host would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner import control
from runner.eta import to_eta
from runner.registry import configure, get_huey
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings
from runner.store.backend import Store
from runner.store.rows import JobFilter
from tests import jobs
from tests.clock_support import skewed_clock
from tests.conftest import ROOT, read_records, wait_for
from tests.postgres_support import fresh_schema
from tests.process.test_postgres import postgres_settings
from tests.redis_support import new_prefix, redis_or_skip, redis_settings

#: Far beyond the tests' 4 s leases: every lease looks expired to a host this far ahead.
SKEW = 120.0


@pytest.fixture(params=["postgres", "redis"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    """Worker settings on a store of the test's own, and this process's handle on it."""
    import tests.jobs  # noqa: F401 - registers the test tasks

    if request.param == "postgres":
        with fresh_schema() as url:
            settings = postgres_settings(tmp_path, url, name="shared.toml")
            huey = _configured(settings)
            yield settings, huey.jobs.store
            huey.jobs.store.close()
        return
    redis_or_skip()
    settings = redis_settings(tmp_path, new_prefix(), name="shared.toml")
    huey = _configured(settings)
    yield settings, huey.jobs.store
    huey.jobs.store.delete_all()
    huey.jobs.store.close()


def _configured(settings: Path) -> RunnerHuey:
    configure(load_settings(settings, environ={}))
    return get_huey()


def _beats(store: Store, node: str, count: int) -> None:
    """Wait until the worker of ``node`` has written ``count`` more heartbeats (each
    followed by its look for orphaned jobs)."""
    def heartbeat() -> float | None:
        return next((w.heartbeat_at for w in store.list_workers() if w.host == node), None)

    first = wait_for(heartbeat, message=f"the worker of {node} to register")
    interval = 0.5  # WORKER_DEFAULTS' heartbeat_interval
    wait_for(lambda: (heartbeat() or 0) >= first + count * interval,
             message=f"{count} heartbeats of {node}")


@pytest.mark.parametrize("skewed", ["ahead", "behind"])
def test_a_running_job_is_not_run_again_because_a_hosts_clock_is_off(
        shared, skewed, tmp_path, make_worker, record_file):
    settings, store = shared
    gate = tmp_path / "gate"
    # Given a job running on host-a, with host-b's clock SKEW seconds ahead of host-a's
    # (or host-a's behind host-b's: the lease host-a writes then ends in host-b's past)
    offset = {"ahead": (0.0, SKEW), "behind": (-SKEW, 0.0)}[skewed]
    env = {"TEST_RECORD_FILE": str(record_file)}
    make_worker(settings=settings, RUNNER_NODE_NAME="host-a", **env,
                **skewed_clock(offset[0]))
    # (due before either clock's now: a host behind starts due jobs that much late)
    result = jobs.record_then_wait.schedule(args=("run", str(gate)),
                                            eta=to_eta(time.time() - 2 * SKEW))
    wait_for(lambda: read_records(record_file), message="the job to start on host-a")
    # When host-b looks for orphaned jobs many times
    make_worker(settings=settings, RUNNER_NODE_NAME="host-b", **env,
                **skewed_clock(offset[1]))
    _beats(store, "host-b", 6)
    # Then the job still runs once, on host-a, and was never charged a crash
    job = store.get_job(result.id)
    assert read_records(record_file) == ["run"]
    assert (job.state, job.crashes, job.lease_owner.split(":")[0]) == ("executing", 0,
                                                                       "host-a")
    gate.touch()
    assert result.get(blocking=True, timeout=30) == "run"
    assert read_records(record_file) == ["run"]


def _cli(settings: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    return subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**env, "PYTHONPATH": str(ROOT), **extra})


def test_a_worker_whose_clock_runs_ahead_is_warned_and_fails_health(shared, make_worker):
    settings, store = shared
    # Given a worker on a host whose clock is right
    make_worker(settings=settings, RUNNER_NODE_NAME="host-a")
    wait_for(lambda: any(w.clock_offset is not None for w in store.list_workers()),
             message="host-a to measure its clock")
    assert _cli(settings, "health").stdout.strip() == "ok"
    # When a worker starts on a host whose clock runs SKEW seconds ahead
    ahead = make_worker(settings=settings, RUNNER_NODE_NAME="host-b", **skewed_clock(SKEW))
    # Then it says so, naming its host, the drift and what follows
    warning = wait_for(lambda: next((line for line in ahead.output().splitlines()
                                     if "WARNING" in line and "clock" in line), None),
                       message="the warning of host-b")
    assert "host-b's clock is 2m00s ahead of the server's (limit 1.0s" in warning
    assert "still start on time" in warning
    # and health fails, naming it
    health = _cli(settings, "health")
    assert health.returncode == 1
    assert health.stdout.strip() == ("unhealthy: clock drift: host-b's clock is 2m00s ahead "
                                     "of the server's (limit 1.0s)")
    # and the list of workers shows each one's clock
    listed = {line.split()[0].split(":")[0]: line for line in
              _cli(settings, "workers").stdout.splitlines()[1:]}
    assert "+2m00s (over 1.0s)" in listed["host-b"]
    assert "(over" not in listed["host-a"]


# -- due times by the server's clock -------------------------------------------------
# A job's run_at is the server's time: whatever host writes it, and whatever host
# judges it due. The test process's clock is the server's (both run on this host).

def _waiting(store: Store, job_id: str) -> float:
    """The job's run_at, once it waits again (retrying or scheduled)."""
    job = wait_for(lambda: (lambda j: j if j is not None and j.state in (
        "scheduled", "retrying") else None)(store.get_job(job_id)),
        message=f"job {job_id} to wait for its run_at")
    return job.run_at


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_a_worker_whose_clock_is_off_runs_jobs_when_they_are_due_by_the_server(
        shared, skew, make_worker, record_file):
    settings, store = shared
    # Given a job due in a minute and one due in a second, by the server's clock
    later = jobs.record_run.schedule(args=("later",), delay=60)
    soon = jobs.record_run.schedule(args=("soon",), delay=1)
    # When a worker whose clock is SKEW seconds off takes them
    make_worker(settings=settings, RUNNER_NODE_NAME="host-b",
                TEST_RECORD_FILE=str(record_file), **skewed_clock(skew))
    # Then the one due in a second runs then (a host behind would hold it SKEW late)
    wait_for(lambda: any(r.startswith("soon ") for r in read_records(record_file)),
             message="the job due in a second to run")
    assert store.get_job(soon.id).started_at >= store.get_job(soon.id).run_at
    # and the one due in a minute does not (a host ahead would start it SKEW early)
    _beats(store, "host-b", 3)
    assert [r.split()[0] for r in read_records(record_file)] == ["soon"]
    assert store.get_job(later.id).state == "scheduled"


@pytest.mark.parametrize("task", ["retry_delay", "Retry(delay)"])
@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_a_worker_whose_clock_is_off_writes_retries_due_by_the_server(
        shared, skew, task, make_worker, record_file):
    settings, store = shared
    # Given a worker whose clock is SKEW seconds off
    make_worker(settings=settings, RUNNER_NODE_NAME="host-b",
                TEST_RECORD_FILE=str(record_file), **skewed_clock(skew))
    # When a job fails there and asks to run again in 30 s (retry_delay) or 60 s (Retry)
    call, delay = {"retry_delay": (jobs.fails_with_a_long_backoff, 30.0),
                   "Retry(delay)": (jobs.asks_a_later_retry, 60.0)}[task]
    result = call("x")
    before = time.time()
    # Then it waits that long by the server's clock, not SKEW more or less
    run_at = _waiting(store, result.id)
    assert before - 5 + delay <= run_at <= time.time() + delay
    _beats(store, "host-b", 3)
    assert len(read_records(record_file)) == 1


_PRODUCE = """
import sys
from pathlib import Path
from runner import control
from runner.settings_loader import load_settings
from runner.registry import configure
configure(load_settings(Path(sys.argv[1]), environ={}))
from tests import jobs
print(jobs.record_run.schedule(args=("later",), delay=60).id)
print(jobs.record_run("now").id)
"""


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_a_producer_whose_clock_is_off_writes_jobs_due_by_the_server(
        shared, skew, make_worker, record_file):
    settings, store = shared
    # Given a worker whose clock is right
    make_worker(settings=settings, RUNNER_NODE_NAME="host-a",
                TEST_RECORD_FILE=str(record_file))
    # When a script on a host whose clock is SKEW off enqueues a job due in a minute
    # and one due now
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    before = time.time()
    produced = subprocess.run([sys.executable, "-c", _PRODUCE, str(settings)],
                              capture_output=True, text=True, timeout=60,
                              env={**env, **skewed_clock(skew)})
    assert produced.returncode == 0, produced.stderr
    later, _ = produced.stdout.split()
    # Then the one due now runs at once (SKEW late if the script's clock were trusted)
    wait_for(lambda: any(r.startswith("now ") for r in read_records(record_file)),
             message="the job due now to run")
    # and the other waits its minute by the server's clock
    assert before + 55 <= store.get_job(later).run_at <= time.time() + 60
    _beats(store, "host-a", 3)
    assert [r.split()[0] for r in read_records(record_file)] == ["now"]


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_a_scheduler_whose_clock_is_off_fires_slots_when_they_are_due_by_the_server(
        shared, skew, make_worker):
    settings, store = shared
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_jobs"]'))
    # Given a scheduler on a host whose clock is SKEW seconds off
    make_worker("--scheduler-only", settings=settings, RUNNER_NODE_NAME="host-b",
                **skewed_clock(skew))
    # When it fires a schedule of every second
    runs = wait_for(lambda: [r for r in store.schedule_runs("every_second", limit=10)
                             if not r.manual], message="a slot to fire")
    # Then each slot fired when it was due by the server's clock, not SKEW early or late
    seen = time.time()
    assert all(seen - 5 <= r.slot <= seen + 1 for r in runs), [r.slot - seen for r in runs]


@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["ahead", "behind"])
def test_the_cli_on_a_host_whose_clock_is_off_writes_due_times_by_the_server(shared, skew):
    settings, store = shared
    # When the CLI of a host whose clock is SKEW off enqueues a job to run in a minute
    before = time.time()
    enqueued = _cli(settings, "enqueue", "record_run", "--args", '["later"]',
                    "--delay", "60", **skewed_clock(skew))
    assert enqueued.returncode == 0, enqueued.stderr
    [job] = store.list_jobs(JobFilter())
    # Then it is due in a minute by the server's clock
    assert before + 55 <= job.run_at <= time.time() + 60
    # and once cancelled and retried there, it is due at once, not SKEW early or late
    control.cancel_jobs(store, [job.id])
    before = time.time()
    retried = _cli(settings, "retry", job.id, **skewed_clock(skew))
    assert retried.returncode == 0, retried.stderr
    assert before - 5 <= store.get_job(job.id).run_at <= time.time()


def test_health_asked_on_a_host_whose_clock_runs_ahead_ages_heartbeats_by_the_server(
        shared, make_worker):
    settings, store = shared
    # Given a worker on a host whose clock is right
    make_worker(settings=settings, RUNNER_NODE_NAME="host-a")
    wait_for(lambda: any(w.clock_offset is not None for w in store.list_workers()),
             message="host-a to measure its clock")
    # When a host whose clock runs SKEW ahead asks about health
    health = _cli(settings, "health", **skewed_clock(SKEW))
    # Then the worker's heartbeat is fresh, as the server's clock tells
    assert (health.returncode, health.stdout.strip()) == (0, "ok")


_PRODUCE_EXPIRING = """
import sys
from pathlib import Path
from runner.settings_loader import load_settings
from runner.registry import configure
configure(load_settings(Path(sys.argv[1]), environ={}))
from tests import jobs
print(jobs.record_run.schedule(args=("fresh",), delay=1, expires=60).id)
"""


@pytest.mark.parametrize("where", ["producer behind", "worker ahead"])
def test_a_job_expires_by_the_servers_clock_whichever_host_is_off(
        shared, where, make_worker, record_file):
    settings, _ = shared
    # Given a job that expires in a minute, enqueued by a host whose clock runs SKEW
    # behind (else it would be stale at once), or taken by a worker SKEW ahead (else
    # it would look stale there)
    producer, worker = {"producer behind": (-SKEW, 0.0), "worker ahead": (0.0, SKEW)}[where]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    produced = subprocess.run([sys.executable, "-c", _PRODUCE_EXPIRING, str(settings)],
                              capture_output=True, text=True, timeout=60,
                              env={**env, **skewed_clock(producer)})
    assert produced.returncode == 0, produced.stderr
    make_worker(settings=settings, RUNNER_NODE_NAME="host-b",
                TEST_RECORD_FILE=str(record_file), **skewed_clock(worker))
    # Then it runs: it is not stale by the server's clock
    wait_for(lambda: read_records(record_file), message="the job to run")
    assert read_records(record_file)[0].startswith("fresh ")
