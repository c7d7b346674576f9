"""The clock drift rule (pure), and a worker measuring its clock against a real Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from runner import clock_drift
from runner.config import Settings, WorkerSection
from runner.store.job_storage import JobStorage
from runner.worker.clock_check import ClockCheck
from tests.redis_support import fresh_store

T0 = 1_700_000_000.0


@pytest.mark.parametrize("sent, server, received, offset", [
    (T0, T0, T0, 0.0),
    (T0 + 30.0, T0, T0 + 30.2, 30.1),  # read halfway through the round trip
    (T0 - 30.0, T0, T0 - 29.8, -29.9),
])
def test_the_offset_is_this_clock_minus_the_servers_read_halfway(sent, server, received,
                                                                  offset):
    assert clock_drift.measured_offset(sent, server, received) == pytest.approx(offset)


@pytest.mark.parametrize("worker, limit", [
    (WorkerSection(), 15.0),  # a quarter of the default 60 s lease
    (WorkerSection(lease_seconds=4, heartbeat_interval=0.5), 1.0),
    (WorkerSection(max_clock_drift=2.5), 2.5),
])
def test_the_limit_is_a_quarter_of_the_lease_unless_set(worker, limit):
    assert clock_drift.drift_limit(worker) == limit


def test_the_limit_leaves_at_least_half_the_leases_margin():
    # The least time a lease has left is lease_seconds - heartbeat_interval.
    tightest = WorkerSection(lease_seconds=10, heartbeat_interval=5)
    margin = tightest.lease_seconds - tightest.heartbeat_interval
    assert clock_drift.drift_limit(tightest) <= margin / 2


@pytest.mark.parametrize("offset, over", [(None, False), (14.9, False), (-15.0, False),
                                          (15.1, True), (-15.1, True)])
def test_an_offset_either_way_past_the_limit_is_over_it(offset, over):
    assert clock_drift.over_limit(offset, 15.0) is over


@pytest.mark.parametrize("offset, lease, judged", [
    (None, 60.0, T0),  # not measured (SQLite): leases as configured
    (120.0, 60.0, T0 - 120.0),  # ahead: judged by the server's clock
    (-120.0, 180.0, T0),  # behind: written long enough by the server's clock
])
def test_leases_are_written_by_the_later_clock_and_judged_by_the_earlier(offset, lease,
                                                                         judged):
    assert clock_drift.lease_for(60.0, offset) == lease
    assert clock_drift.judging_time(T0, offset) == judged


@pytest.mark.parametrize("writer, judge", [(0.0, 0.0), (120.0, 0.0), (-120.0, 0.0),
                                           (0.0, 120.0), (0.0, -120.0), (-120.0, 120.0)])
def test_a_running_jobs_lease_never_looks_expired_whoever_is_off(writer, judge):
    # A lease extended at server time T0 by a worker whose clock reads T0 + writer,
    # judged one heartbeat later by a worker whose clock reads T0 + judge + 5.
    expires = T0 + writer + clock_drift.lease_for(60.0, writer)
    judged_at = clock_drift.judging_time(T0 + judge + 5.0, judge)
    assert expires >= judged_at + 55.0


def test_a_heartbeat_is_aged_by_the_servers_clock():
    # written at server time T0 by a clock 120 s behind, read 2 s later
    assert clock_drift.server_age(T0 - 120.0, -120.0, T0 + 2.0) == pytest.approx(2.0)
    assert clock_drift.server_age(T0, None, T0 + 2.0) == 2.0


@pytest.mark.parametrize("offset, words", [
    (119.98, "host-b's clock is 2m00s ahead of the server's"),
    (-0.25, "host-b's clock is 250ms behind the server's"),
])
def test_the_drift_is_named_by_host_amount_and_side(offset, words):
    assert clock_drift.describe("host-b", offset) == words


# -- a worker measuring its clock --------------------------------------------------------


class SkewedClock:
    """This host's clock, ``skew`` seconds off the true one."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.time() + self.skew


@pytest.fixture
def checked() -> Iterator[tuple[ClockCheck, SkewedClock, JobStorage]]:
    with fresh_store() as store:
        settings = Settings(worker=replace(WorkerSection(), queue_type="redis"))
        storage = JobStorage(settings=settings, store=store)
        clock = SkewedClock()
        yield ClockCheck(storage, settings, "host-b:42:1", clock=clock), clock, storage


def test_a_worker_whose_clock_runs_ahead_is_warned_once_with_the_consequence(checked, caplog):
    check, clock, _ = checked
    caplog.set_level(logging.INFO, logger="runner.worker.clock_check")
    assert abs(check.measure()) < 1.0  # the test server runs on this host
    assert not caplog.records
    clock.skew = 120.0
    assert check.measure() == pytest.approx(120.0, abs=1.0)
    [warning] = caplog.records
    assert warning.levelname == "WARNING"
    assert "host-b's clock is 2m00s ahead of the server's (limit 15.0s" in warning.message
    assert "still start on time" in warning.message
    assert "NTP" in warning.message
    clock.skew = 125.0  # moved by less than the limit: nothing new to say
    check.measure()
    assert len(caplog.records) == 1
    clock.skew = 300.0  # it keeps running away: said again
    check.measure()
    assert len(caplog.records) == 2 and "5m00s ahead" in caplog.records[-1].message
    clock.skew = 0.0
    check.measure()
    assert caplog.records[-1].levelname == "INFO"
    assert "within the limit (15.0s) again" in caplog.records[-1].message


def test_a_worker_whose_clock_runs_behind_claims_longer_leases(checked, caplog):
    check, clock, storage = checked
    clock.skew = -120.0
    check.measure()
    assert storage.lease_seconds == pytest.approx(180.0, abs=1.0)
    assert check.lease() == storage.lease_seconds
    assert check.judging_time(T0) == T0
    assert "behind the server's" in caplog.text and "2m00s longer" in caplog.text
    clock.skew = 0.0
    check.measure()
    assert storage.lease_seconds == pytest.approx(60.0, abs=1.0)


def test_a_sqlite_worker_has_no_clock_to_measure(tmp_path):
    settings = Settings(runner=replace(Settings().runner, database=str(tmp_path / "jobs.db")))
    storage = JobStorage(settings=settings)
    check = ClockCheck(storage, settings, "host-a:1:1")
    assert check.measure() is None
    assert (check.lease(), check.judging_time(T0), storage.lease_seconds) == (60.0, T0, 60.0)
    storage.store.close()


class SlowServer:
    """A store whose clock reading takes ``delay`` seconds of this host's clock."""

    def __init__(self, clock: SkewedClock) -> None:
        self.clock, self.delay = clock, 0.0

    def server_time(self) -> float:
        now = time.time()
        self.clock.skew += self.delay  # the time the reading took, by this host's clock
        return now


def test_a_slow_reading_counts_only_where_it_can_tell(checked, caplog):
    check, clock, storage = checked
    storage.store = server = SlowServer(clock)
    clock.skew, server.delay = 14.0, 12.0  # read in 12 s: off by 20 s, give or take 6
    assert check.measure() == pytest.approx(20.0, abs=0.5)  # the first one counts ...
    assert storage.lease_seconds == 60.0  # (an offset ahead does not lengthen leases)
    assert not caplog.records  # ... but cannot tell 20 s from within the limit of 15
    clock.skew, server.delay = 0.0, 0.0
    assert abs(check.measure()) < 0.5
    clock.skew, server.delay = 60.0, 12.0
    assert abs(check.measure()) < 0.5  # dropped: the earlier reading stays
