"""Times other hosts judge are written and judged by the server's clock.

A host whose clock is off (``SkewedClock``) writes ``run_at`` and claims by the
server's clock through the job storage; a SQLite file keeps its host's clock.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from runner.config import Settings, WorkerSection
from runner.store.job_rows import NewJob
from runner.store.job_storage import JobStorage
from runner.store.server_clock import REREAD_AFTER, ServerClock
from tests.conftest import wait_for
from tests.redis_support import fresh_store
from tests.unit.test_clock_drift import SkewedClock


class CountedReads:
    """A store's clock, counting the reads (``fails``: unreachable)."""

    def __init__(self, store: object) -> None:
        self.store, self.reads, self.fails = store, 0, False

    def server_time(self) -> float | None:
        self.reads += 1
        if self.fails:
            raise ConnectionError("server gone")
        return self.store.server_time()  # type: ignore[attr-defined]


def _job(ident: str, run_at: float) -> NewJob:
    return NewJob(ident, "tests.jobs.noop", "default", 0, b"x", None, 1, run_at)


@pytest.fixture
def redis_store() -> Iterator[object]:
    with fresh_store() as store:
        yield store


def test_a_process_reads_the_servers_clock_once(redis_store):
    reads, clock = CountedReads(redis_store), SkewedClock()
    clock.skew = 120.0
    server = ServerClock(reads, clock=clock)  # type: ignore[arg-type]
    assert server.offset == pytest.approx(120.0, abs=1.0)
    assert server.now() == pytest.approx(time.time(), abs=1.0)
    assert server.to_server(1000.0 + server.offset) == pytest.approx(1000.0)
    assert server.to_local(1000.0) == pytest.approx(1000.0 + server.offset)
    assert reads.reads == 1


def _producer_120s_ahead(store: object) -> tuple[CountedReads, SkewedClock, list[float],
                                                 ServerClock]:
    """A producer (a web app) that read the server's clock with its own 120 s ahead; the
    list holds its monotonic clock's time."""
    reads, clock, ticks = CountedReads(store), SkewedClock(), [0.0]
    clock.skew = 120.0
    server = ServerClock(reads, clock=clock, monotonic=lambda: ticks[0])  # type: ignore[arg-type]
    assert server.offset == pytest.approx(120.0, abs=1.0)
    return reads, clock, ticks, server


def test_a_long_running_producer_reads_the_servers_clock_again(redis_store):
    reads, clock, ticks, server = _producer_120s_ahead(redis_store)
    # When its clock is set right (NTP) while it runs on
    clock.skew = 0.0
    ticks[0] = REREAD_AFTER - 1
    assert server.offset == pytest.approx(120.0, abs=1.0)  # one reading serves a while
    ticks[0] = REREAD_AFTER + 1
    # Then a later write reads the server's clock again, and its run_at are right again
    assert server.offset == 0.0
    assert server.now() == pytest.approx(time.time(), abs=1.0)
    assert reads.reads == 2


def test_a_failed_reading_again_keeps_the_last_offset(redis_store):
    reads, _, ticks, server = _producer_120s_ahead(redis_store)
    ticks[0], reads.fails = REREAD_AFTER + 1, True
    assert server.offset == pytest.approx(120.0, abs=1.0)  # not 0: the last one known
    reads.fails = False
    assert server.offset == pytest.approx(120.0, abs=1.0)  # and it is read again at once
    assert reads.reads == 3


def test_clocks_that_agree_within_the_reading_are_not_corrected(redis_store):
    server = ServerClock(redis_store)  # the test server runs on this host, on its clock
    assert server.offset == 0.0
    jobs = [_job("a", 5.0)]
    assert server.jobs(jobs) is jobs  # nothing to copy


def test_an_unreachable_server_is_read_again_at_the_next_write(redis_store):
    reads, clock = CountedReads(redis_store), SkewedClock()
    clock.skew, reads.fails = -120.0, True
    server = ServerClock(reads, clock=clock)  # type: ignore[arg-type]
    assert server.offset == 0.0
    reads.fails = False
    assert server.offset == pytest.approx(-120.0, abs=1.0)
    assert reads.reads == 2


def test_a_workers_own_measurement_replaces_the_reading(redis_store):
    reads = CountedReads(redis_store)
    server = ServerClock(reads)  # type: ignore[arg-type]
    server.set(-30.0, 0.01)
    assert server.offset == -30.0
    server.set(0.004, 0.01)  # within the reading's error: none
    assert server.offset == 0.0
    server.set(None, 0.0)  # SQLite: nothing measured
    assert server.offset == 0.0
    assert reads.reads == 0


def test_a_workers_heartbeats_keep_its_measurement_from_being_read_again(redis_store):
    reads, ticks = CountedReads(redis_store), [0.0]
    server = ServerClock(reads, monotonic=lambda: ticks[0])  # type: ignore[arg-type]
    for beat in range(5):  # a heartbeat's measurement every half of the window
        ticks[0] = beat * REREAD_AFTER / 2
        server.set(-30.0, 0.01)
        assert server.offset == -30.0 and server.now() == pytest.approx(time.time() + 30, abs=1)
    assert reads.reads == 0


def test_new_jobs_are_copied_with_the_servers_run_at():
    server = ServerClock(None)  # type: ignore[arg-type]
    server.set(120.0, 0.0)
    mine = [_job("a", 1120.0), _job("b", 1180.0)]
    written = server.jobs(mine)
    assert [j.run_at for j in written] == [1000.0, 1060.0]
    assert [j.run_at for j in mine] == [1120.0, 1180.0]  # a write tried again shifts once


def test_a_sqlite_file_keeps_this_hosts_clock(tmp_path):
    settings = Settings(runner=replace(Settings().runner, database=str(tmp_path / "jobs.db")))
    storage = JobStorage(settings=settings)
    assert storage.clock.offset == 0.0
    storage.store.close()


@pytest.mark.parametrize("skew", [120.0, -120.0], ids=["ahead", "behind"])
def test_a_skewed_host_enqueues_and_claims_by_the_servers_clock(redis_store, skew):
    settings = Settings(worker=replace(WorkerSection(), queue_type="redis", queue_size=0))
    storage = JobStorage(settings=settings, store=redis_store)  # type: ignore[arg-type]
    clock = SkewedClock()
    clock.skew = skew
    storage.clock = ServerClock(redis_store, clock=clock)  # type: ignore[arg-type]
    storage.start_consuming("host-b:1:1")
    try:
        here = clock()  # what time.time() reads on that host
        # A job due in a minute and one due now, by that host's clock
        storage.insert_jobs([_job("later", here + 60), _job("now", here)])
        later = redis_store.get_job("later")  # type: ignore[attr-defined]
        assert later.run_at == pytest.approx(time.time() + 60, abs=2.0)
        # are due in a minute and now by the server's: whoever claims
        assert [c.id for c in storage.claim_due(5)] == ["now"]
    finally:
        storage.stop_consuming()


def _clock_of(store: object, skew: float) -> ServerClock:
    local = SkewedClock()
    local.skew = skew
    return ServerClock(store, clock=local)  # type: ignore[arg-type]


@pytest.mark.parametrize("holder, other", [(-120.0, 120.0), (120.0, -120.0)],
                         ids=["holder-behind", "holder-ahead"])
def test_the_exporters_lease_is_held_by_the_servers_clock(redis_store, holder, other):
    from runner.worker.exporter import ExporterElection

    # Given the exporter's lease held by a host whose clock is off one way
    first = ExporterElection(redis_store, "host-a:1:1", 0.1,  # type: ignore[arg-type]
                             clock=_clock_of(redis_store, holder).now)
    second = ExporterElection(redis_store, "host-b:1:1", 0.1,  # type: ignore[arg-type]
                              clock=_clock_of(redis_store, other).now)
    first.start()
    try:
        wait_for(lambda: first.elected, message="the first host to take the lease")
        # When a host whose clock is off the other way tries many times
        second.start()
        wait_for(lambda: second.passes >= 5, message="the second host's tries")
        # Then the lease stays with the first while it renews it
        assert first.elected and not second.elected
        first.stop()  # and passes on when it stops
        wait_for(lambda: second.elected, message="the second host to take over")
    finally:
        first.stop()
        second.stop()


def test_huey_writes_and_judges_expiries_and_revocations_by_the_servers_clock(huey):
    from tests import jobs

    huey.jobs.clock.set(120.0, 0.0)  # this host runs two minutes ahead of the server
    # A revocation's end given by this host's clock is stored as the server's
    until = datetime.datetime(2030, 1, 1, 12, 0)
    huey.revoke_by_id("some-job", revoke_until=until)
    stored, _ = huey.serializer.deserialize(huey.storage.peek_data("r:some-job"))
    assert stored == until - datetime.timedelta(minutes=2)
    # and so is an expiry, made from this host's now
    task = jobs.noop.s(expires=60)
    huey.new_job(task)
    here = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    server_now = here - datetime.timedelta(minutes=2)
    assert abs((task.expires_resolved - server_now).total_seconds() - 60) < 5
    # and huey's now, which judges both, is the server's
    assert abs((huey._get_timestamp() - server_now).total_seconds()) < 5
