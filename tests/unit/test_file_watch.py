"""A write reads the jobs file's identity when the file may have changed, not before each."""

from __future__ import annotations

import os
import sys

import pytest

from runner import DatabaseUnavailable
from runner.store.sqlite import file_watch
from runner.store.sqlite.db import Database
from tests import jobs
from tests.unit.test_db import ids_in, restore

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


@pytest.fixture
def looks(huey, monkeypatch):
    """How many times writes have read the file's identity."""
    count = [0]
    original = Database._file_identity

    def counted(self):
        count[0] += 1
        return original(self)

    monkeypatch.setattr(Database, "_file_identity", counted)
    return count


@linux_only
def test_a_write_reads_the_files_identity_only_once_something_happened_to_it(huey, looks):
    jobs.add(1, 1)
    jobs.add(2, 2)
    before = looks[0]
    jobs.add(3, 3)
    jobs.add(4, 4)
    assert looks[0] == before  # nothing happened to the file
    os.utime(huey.jobs.db.path)  # its metadata changed: the next write looks again
    jobs.add(5, 5)
    assert looks[0] == before + 1


def test_every_write_reads_the_identity_where_the_file_cannot_be_watched(huey, looks,
                                                                          monkeypatch):
    monkeypatch.setattr(file_watch, "_LIBC", None)
    jobs.add(1, 1)
    before = looks[0]
    jobs.add(2, 2)
    jobs.add(3, 3)
    assert looks[0] == before + 2


@pytest.mark.parametrize("watched", [True, False], ids=["watched", "unwatched"])
def test_a_write_right_after_a_restore_goes_to_the_restored_file(huey, tmp_path, monkeypatch,
                                                                 watched):
    if not watched:
        monkeypatch.setattr(file_watch, "_LIBC", None)
    path = huey.jobs.db.path
    jobs.add(1, 1)
    empty = tmp_path / "empty.db"
    empty.touch()
    restore(empty, path)
    after = jobs.add(2, 2)
    assert ids_in(path) == {after.id}
    os.remove(path)
    with pytest.raises(DatabaseUnavailable, match="deleted while open"):
        jobs.add(3, 3)


@linux_only
def test_a_swap_is_heard_by_every_thread_of_the_process(huey, tmp_path):
    import queue
    import threading

    path = huey.jobs.db.path
    asks: queue.Queue = queue.Queue()
    made: queue.Queue = queue.Queue()

    def producer() -> None:  # one thread, its connection kept between its writes
        while (n := asks.get()) is not None:
            made.put(jobs.add(n, n))

    other = threading.Thread(target=producer)
    other.start()
    try:
        asks.put(1)
        made.get(timeout=10)
        empty = tmp_path / "empty.db"
        empty.touch()
        restore(empty, path)
        jobs.add(3, 3)  # this thread reopens the file and heard the swap first
        asks.put(4)
        after = made.get(timeout=10)
    finally:
        asks.put(None)
        other.join()
    assert after.id in ids_in(path)


@linux_only
def test_a_forked_child_does_not_take_the_parents_news_of_a_swap(huey, tmp_path):
    from runner.store.factory import open_store

    path = huey.jobs.db.path
    jobs.add(1, 1)  # the parent watches the file
    empty = tmp_path / "empty.db"
    empty.touch()
    pid = os.fork()
    if pid == 0:  # the child swaps the file, then writes twice through a store of its own
        code = 1
        try:
            restore(empty, path)
            store = open_store(path)
            store.absorb_intake()
            store.absorb_intake()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    after = jobs.add(2, 2)  # the parent heard the swap too
    assert ids_in(path) == {after.id}


@linux_only
def test_a_refused_watch_is_not_asked_for_again_at_every_write(huey, looks, monkeypatch):
    # The per-user limit of watches reached: the writes read the identity each time, and
    # do not ask the kernel for a watch each time too.
    asked = []
    libc = file_watch._LIBC

    class NoWatches:
        def inotify_init1(self, flags):
            return libc.inotify_init1(flags)

        def inotify_add_watch(self, fd, path, mask):
            asked.append(path)
            return -1

    monkeypatch.setattr(file_watch, "_LIBC", NoWatches())
    huey.jobs.db._watch = None  # as if first written now
    jobs.add(0, 0)
    refused = len(asked)
    before = looks[0]
    for n in range(4):
        jobs.add(n, n)
    assert refused >= 1 and len(asked) == refused
    assert looks[0] == before + 4
