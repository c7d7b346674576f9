"""Limits hold across real worker processes: concurrency=1 never overlaps, a rate holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.settings_loader import load_settings
from runner.store.factory import open_store
from runner.store.rows import JobFilter
from runner.store.states import JobState
from tests.conftest import ROOT, read_records, wait_for, write_settings


def _settings(directory: Path, **worker: object) -> Path:
    path = write_settings(directory, worker=worker)
    path.write_text(path.read_text().replace('imports = ["tests.jobs"]',
                                             'imports = ["tests.flow_jobs"]'))
    return path


def _enqueue(settings: Path, calls: str) -> None:
    """Enqueue from a script of its own, as a producer would (the limited tasks stay out
    of this test process's registry)."""
    script = ("from runner import get_huey\n"
              "from tests.flow_jobs import exclusive, rated\n"
              f"{calls}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RUNNER_SETTINGS": str(settings)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120,
                   cwd=settings.parent)


def test_a_task_with_concurrency_one_never_overlaps_across_two_workers(
        tmp_path, make_worker, record_file):
    # Each worker serves its own queue, so both must run some of the jobs, and only the
    # task's limit, shared through the database, keeps them from overlapping.
    settings = _settings(tmp_path, prefetch=4)
    count = 16
    _enqueue(settings, "calls = []\n"
                       f"for n in range({count}):\n"
                       "    call = exclusive.s(f'x{n}', 0.05)\n"
                       "    call.queue = 'left' if n % 2 else 'right'\n"
                       "    calls.append(call)\n"
                       "get_huey().enqueue_many(calls)")
    workers = [make_worker("--queues", queue, settings=settings,
                           TEST_RECORD_FILE=str(record_file)) for queue in ("left", "right")]
    wait_for(lambda: sum(line.startswith("end") for line in read_records(record_file)) == count,
             timeout=60, message="every exclusive job to end")
    spans: dict[str, list[float]] = {}
    pids = set()
    for line in read_records(record_file):
        _, label, pid, at = line.split()
        spans.setdefault(label, []).append(float(at))
        pids.add(pid)
    intervals = sorted(tuple(times) for times in spans.values())
    assert len(intervals) == count  # each ran once
    for (_, end), (start, _) in zip(intervals, intervals[1:], strict=False):
        assert start >= end, f"overlap: a job started at {start} before {end}"
    assert len(pids) == 2, "both worker processes ran some of the jobs"
    assert all(w.proc.poll() is None for w in workers)


@pytest.mark.parametrize("answer", [None, "done", "fail"],
                         ids=["returns-none", "returns-a-value", "dies"])
def test_the_next_job_of_a_task_at_its_limit_starts_when_the_slot_frees_not_at_a_poll(
        tmp_path, make_worker, record_file, answer):
    # A poll interval far longer than the whole run: only the freed slot can start them.
    settings = _settings(tmp_path, prefetch=4, max_concurrent_tasks=4, poll_interval=30,
                         heartbeat_interval=5, lease_seconds=60)
    count = 4
    make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
    _enqueue(settings, f"exclusive.map([(f'x{{n}}', 0.2, {answer!r}) for n in range({count})])")
    wait_for(lambda: sum(line.startswith("end") for line in read_records(record_file)) == count,
             timeout=20, message="every exclusive job to end, each as the one before ends")
    times = {}
    for line in read_records(record_file):
        kind, label, _, at = line.split()
        times[kind, label] = float(at)
    starts = sorted(at for (kind, _), at in times.items() if kind == "start")
    ends = sorted(at for (kind, _), at in times.items() if kind == "end")
    gaps = [start - end for end, start in zip(ends, starts[1:], strict=False)]
    assert max(gaps) < 2.0, gaps


@pytest.mark.solo  # measures wall-clock precision
def test_a_rate_of_20_a_second_starts_about_100_jobs_in_5_seconds_spending_no_attempt(
        tmp_path, make_worker, record_file):
    settings = _settings(tmp_path, prefetch=4, max_concurrent_tasks=8)
    _enqueue(settings, "rated.map(range(400))")
    workers = [make_worker(settings=settings, TEST_RECORD_FILE=str(record_file))
               for _ in range(2)]
    wait_for(lambda: len(read_records(record_file)) >= 150, timeout=60,
             message="150 rate-limited starts")
    for worker in workers:
        assert worker.terminate() == 0
    starts = sorted(float(line.split()[1]) for line in read_records(record_file))
    first = starts[0]
    in_window = [t for t in starts if t < first + 5.0]
    assert 95 <= len(in_window) <= 105, len(in_window)
    assert {line.split()[2] for line in read_records(record_file)} == {"1"}  # first attempts
    store = open_store(load_settings(settings, environ={}), readonly=True)
    waiting = store.list_jobs(JobFilter(state=JobState.AVAILABLE), limit=1000)
    assert waiting and all(row.attempt == 0 for row in waiting)  # the rest wait, unspent
