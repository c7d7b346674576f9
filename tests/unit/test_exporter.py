"""One worker at a time serves the database-wide series: a lease with explicit times."""

from __future__ import annotations

from runner.store.factory import store_for
from runner.store.sqlite.leases import release_lease, take_lease
from runner.worker.exporter import ExporterElection
from tests.conftest import wait_for


def test_one_holder_at_a_time_and_a_dead_holder_is_replaced(huey):
    db = huey.jobs.db
    assert take_lease(db, "x", "a", 15.0, now=1000.0)
    assert not take_lease(db, "x", "b", 15.0, now=1005.0)  # a holds it
    assert take_lease(db, "x", "a", 15.0, now=1010.0)  # renewed until 1025
    assert not take_lease(db, "x", "b", 15.0, now=1024.0)
    assert take_lease(db, "x", "b", 15.0, now=1026.0)  # a stopped renewing: b takes over
    assert not take_lease(db, "x", "a", 15.0, now=1027.0)


def test_a_clean_stop_hands_the_lease_over_at_once(huey):
    db = huey.jobs.db
    assert take_lease(db, "x", "a", 15.0, now=1000.0)
    release_lease(db, "x", "b")  # not b's: nothing changes
    assert not take_lease(db, "x", "b", 15.0, now=1001.0)
    release_lease(db, "x", "a")
    assert take_lease(db, "x", "b", 15.0, now=1001.0)


def test_election_thread_says_whether_it_holds_the_lease(huey):
    db = huey.jobs.db
    first = ExporterElection(store_for(db), "first", interval=0.05)
    second = ExporterElection(store_for(db), "second", interval=0.05)
    first.start()
    wait_for(lambda: first.elected, message="first elected")
    second.start()
    try:
        wait_for(lambda: second.passes >= 2, message="second tried twice")
        assert not second.elected and first.elected
        first.stop()
        assert not first.elected
        wait_for(lambda: second.elected, message="second takes over")
    finally:
        first.stop()
        second.stop()
