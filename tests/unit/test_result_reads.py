"""A blocking ``get()`` reads the store once per look while the job is not done yet."""

from __future__ import annotations

import pytest

from runner import result as result_module
from runner.testing import drain
from tests import jobs

#: Looks before the job runs: enough that a second read per look would show.
LOOKS = 8


def _count_reads(monkeypatch: pytest.MonkeyPatch, store) -> list[str]:
    reads: list[str] = []
    for name in ("job_state", "kv_peek", "kv_pop"):
        original = getattr(store, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            reads.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    return reads


def _run_after_looks(monkeypatch: pytest.MonkeyPatch, looks: list[int], then) -> None:
    """Each pause between looks counts one look instead of sleeping; the job runs after
    ``LOOKS`` of them."""
    def pause(seconds: float) -> None:
        looks.append(1)
        if len(looks) == LOOKS:
            then()

    monkeypatch.setattr(result_module.time, "sleep", pause)


@pytest.mark.parametrize("preserve", [False, True])
def test_a_blocking_get_reads_the_store_once_per_look(huey, monkeypatch, preserve):
    # Given a job no worker has run yet
    result = jobs.add(1, 2)
    reads = _count_reads(monkeypatch, huey.jobs.store)
    looks: list[int] = []
    # When its result is waited for, and it runs after a few looks
    _run_after_looks(monkeypatch, looks, drain)
    # Then the answer comes, having read the store once per look (and once to end)
    assert result.get(blocking=True, timeout=10, preserve=preserve) == 3
    assert len(looks) == LOOKS
    assert len(reads) <= LOOKS + 2, reads


def test_a_blocking_get_of_a_job_that_returns_none_ends_with_one_read_per_look(huey,
                                                                               monkeypatch):
    result = jobs.noop()
    reads = _count_reads(monkeypatch, huey.jobs.store)
    looks: list[int] = []
    _run_after_looks(monkeypatch, looks, drain)
    assert result.get(blocking=True, timeout=10) is None
    assert len(reads) <= LOOKS + 2, reads


# -- jobs that end with nothing stored ----------------------------------------------------


def test_a_blocking_get_of_a_job_cancelled_while_waiting_raises_at_once(huey):
    from huey.exceptions import TaskException

    from runner.control import cancel_job

    # Given a job cancelled before any worker ran it (so no error was ever stored)
    later = jobs.add.schedule((1, 2), delay=3600)
    cancel_job(huey.jobs.store, later.id, by="ops@host (api)")
    # Then a blocking get answers with the cancel instead of waiting out its timeout
    with pytest.raises(TaskException, match=r"JobCancelled.*cancelled by ops@host"):
        later.get(blocking=True, timeout=5)


def test_a_blocking_get_of_a_job_dead_without_a_stored_error_raises_its_reason(huey):
    from huey.exceptions import TaskException

    from runner import task
    from runner.store.states import JobState

    @task(retry_limit=0)
    def forgotten():
        return 1

    # Given a job whose task this worker does not know: it dies with no error stored
    result = forgotten()
    huey._registry.unregister(forgotten.task_class)
    drain()
    assert huey.jobs.job_state(result.id) is JobState.DEAD
    # Then its reason ends a blocking wait
    with pytest.raises(TaskException, match="forgotten"):
        result.get(blocking=True, timeout=5)
