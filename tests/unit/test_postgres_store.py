"""What only the PostgreSQL store has to get right: lock order, schema versions, its schema."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from runner import control
from runner.errors import DatabaseCorrupt, SchemaTooNew
from runner.flow import FlowLimits, Rate
from runner.store.job_rows import Ack, QueueBound
from runner.store.postgres import PgDatabase, PostgresStore
from runner.store.postgres.connection import lock_key
from runner.store.postgres.limits import key_lock_name
from runner.store.postgres.schema import forget, prepare
from runner.store.postgres.transitions import claim_at_once
from runner.store.postgres.transitions.enqueue import drop_oldest
from runner.store.rows import JobFilter
from runner.store.sqlite.migrations import SCHEMA_VERSION
from runner.store.states import WAITING_SQL, JobState
from tests.conformance.helpers import T0, failure, job
from tests.conftest import wait_for
from tests.postgres_support import fresh_schema


@pytest.fixture
def url():
    with fresh_schema() as address:
        yield address


def _store(address: str) -> PostgresStore:
    db = PgDatabase(address, pool_size=4)
    prepare(db)
    return PostgresStore(db)


def test_enqueues_racing_claims_with_acks_never_deadlock(url):
    producer, worker = _store(url), _store(url)
    stop = threading.Event()
    done: list[Ack] = []

    def work() -> None:
        while not stop.is_set():
            result = worker.claim(now=T0 + 10, owner="w:1:1", lease_seconds=30, want=4,
                                  acks=list(done))
            done[:] = [Ack(c.id, c.attempt, T0, T0 + 1) for c in result.claimed]

    thread = threading.Thread(target=work)
    thread.start()
    try:
        for _ in range(150):
            producer.enqueue([job(T0)], now=T0)
    finally:
        stop.set()
        thread.join(30)
    # Both take the counters, then the per-queue count: never one waiting on the other.
    assert (producer.db.retries, worker.db.retries) == (0, 0)
    producer.db.close()
    worker.db.close()


def test_a_database_newer_than_the_code_is_refused_untouched(url):
    store = _store(url)
    store.db.write(lambda c: c.execute("UPDATE runner_meta SET value = %s WHERE key = 'schema'",
                                       (str(SCHEMA_VERSION + 1),)))
    forget(store.db)
    with pytest.raises(SchemaTooNew) as refused:
        prepare(store.db)
    assert refused.value.exit_code == 78
    assert f"schema version {SCHEMA_VERSION + 1}" in str(refused.value)
    store.db.close()


def test_a_damaged_schema_version_is_refused_as_corrupt(url):
    store = _store(url)
    store.db.write(lambda c: c.execute("UPDATE runner_meta SET value = 'abc' "
                                       "WHERE key = 'schema'"))
    forget(store.db)
    with pytest.raises(DatabaseCorrupt) as refused:
        prepare(store.db)
    assert refused.value.exit_code == 65
    assert "runner_meta records schema version 'abc'" in str(refused.value)
    store.db.close()


def test_a_version_4_database_gets_the_clock_offset_of_its_workers_and_keeps_them(url):
    store = _store(url)
    store.register("host:1:1", concurrency=2, queues=())
    store.db.write(lambda c: c.execute("ALTER TABLE runner_worker DROP COLUMN clock_offset; "
                                       "UPDATE runner_meta SET value = '4' WHERE key = 'schema'"))
    forget(store.db)
    prepare(store.db)
    [worker] = store.list_workers()
    assert (worker.id, worker.concurrency, worker.clock_offset) == ("host:1:1", 2, None)
    store.heartbeat("host:1:1", [], lease_seconds=30, clock_offset=-2.5)
    assert store.list_workers()[0].clock_offset == -2.5
    assert store.db.query("SELECT value FROM runner_meta WHERE key = 'schema'")[0][0] == str(
        SCHEMA_VERSION)
    store.db.close()


def test_a_missing_index_is_created_again_at_start(url):
    store = _store(url)
    store.db.write(lambda c: c.execute("DROP INDEX runner_job_claim"))
    forget(store.db)
    prepare(store.db)
    assert store.db.query("SELECT to_regclass('runner_job_claim') IS NOT NULL")[0][0]
    store.db.close()


def test_timestamps_keep_their_fraction_of_a_second(url):
    store = _store(url)
    new = job(T0 + 0.123456)
    store.enqueue([new], now=T0 + 0.000001)
    row = store.get_job(new.id)
    assert (row.run_at, row.created_at) == (T0 + 0.123456, T0 + 0.000001)
    with psycopg.connect(url) as conn:
        kinds = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'runner_job'").fetchall())
    assert kinds["run_at"] == "double precision" and kinds["priority"] == "bigint"
    store.db.close()


def test_a_current_database_opens_without_running_its_ddl(url):
    store = _store(url)
    forget(store.db)
    with psycopg.connect(url, autocommit=True) as reader:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM runner_job")  # holds ACCESS SHARE until it ends
        # DDL (ALTER TABLE) would wait for that reader; a current schema is only read.
        opened = threading.Thread(target=prepare, args=(store.db,))
        opened.start()
        opened.join(5)
        finished = not opened.is_alive()
        reader.execute("ROLLBACK")
    opened.join(30)
    assert finished
    store.db.close()


def test_a_start_analyses_a_jobs_table_postgresql_never_analysed(url):
    # Autovacuum off (or not run yet): without statistics the planner took the claim index
    # for a few rows and read every waiting job on each claim.
    store = _store(url)
    store.enqueue([job(T0) for _ in range(300)], now=T0)
    store.db.close()  # the backends report their row counts as they end

    def changed() -> bool:
        return store.db.query("SELECT n_mod_since_analyze > 0 FROM pg_stat_user_tables "
                              "WHERE relid = 'runner_job'::regclass")[0][0]

    wait_for(changed, timeout=10.0)
    forget(store.db)
    prepare(store.db)
    analysed, = store.db.query("SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
                               "FROM pg_stat_user_tables WHERE relid = 'runner_job'::regclass")[0]
    plan = store.db.query("EXPLAIN (FORMAT JSON) SELECT id FROM runner_job WHERE state IN "
                          f"{WAITING_SQL}")[0][0]
    assert analysed and plan[0]["Plan"]["Plan Rows"] == 300
    store.db.close()


def test_the_common_claim_is_planned_once_per_connection(url):
    # Its statement names the waiting states as literals: with a parameter there, no
    # generic plan could use the claim index, so PostgreSQL planned every call anew.
    store = _store(url)
    store.enqueue([job(T0) for _ in range(2000)], now=T0)  # enough for the index to matter
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE runner_job")  # as a start does (the claim index then wins)
        acks: list[Ack] = []
        for _ in range(20):
            result = claim_at_once(conn, now=T0 + 10, owner="w:1:1", lease_seconds=30,
                                   want=8, acks=acks)
            acks = [Ack(c.id, c.attempt, T0, T0 + 1) for c in result.claimed]
        generic, = conn.execute("SELECT sum(generic_plans) FROM pg_prepared_statements "
                                "WHERE statement LIKE '%%FOR UPDATE SKIP LOCKED%%'").fetchone()
    assert generic >= 5  # none before: every call was planned anew
    store.db.close()


def _race(url: str, limits: FlowLimits, hosts: int = 6) -> list[str]:
    """Every host claims at the same instant under ``limits``; the ids they took."""
    stores = [_store(url) for _ in range(hosts)]
    start = threading.Barrier(hosts)
    taken: list[str] = []

    def claim(store: PostgresStore, n: int) -> None:
        start.wait()
        result = store.claim(now=T0, owner=f"h{n}:1:1", lease_seconds=30, want=5, limits=limits)
        taken.extend(c.id for c in result.claimed)

    threads = [threading.Thread(target=claim, args=(s, n)) for n, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for store in stores:
        store.db.close()
    return taken


def test_hosts_claiming_at_once_never_share_the_last_concurrency_slot(url):
    _store(url).enqueue([job(T0, task="report") for _ in range(20)], now=T0)
    assert len(_race(url, FlowLimits(task_concurrency={"report": 2}))) == 2


def test_hosts_claiming_at_once_never_spend_the_same_token(url):
    _store(url).enqueue([job(T0, task="api") for _ in range(20)], now=T0)
    assert len(_race(url, FlowLimits(task_rates={"api": Rate(1, 60.0, burst=3)}))) == 3



def test_hosts_claiming_at_once_never_run_two_jobs_of_one_key(url):
    jobs = [job(T0, task="sync", concurrency_key=f"user-{n % 4}") for n in range(20)]
    _store(url).enqueue(jobs, now=T0)
    keys = {j.id: j.concurrency_key for j in jobs}
    limits = FlowLimits(key_concurrency={"sync": 1})
    taken = _race(url, limits)
    assert len(taken) == len({keys[t] for t in taken})  # no key twice
    # A key passed over while another claim held it is taken by the next claim.
    later = _store(url)
    taken += [c.id for c in later.claim(now=T0, owner="h9:1:1", lease_seconds=30, want=10,
                                        limits=limits).claimed]
    later.db.close()
    assert sorted(keys[t] for t in taken) == ["user-0", "user-1", "user-2", "user-3"]


def test_a_key_claimed_elsewhere_holds_back_only_that_key_of_the_task(url):
    store = _store(url)
    busy, free = job(T0, task="sync", concurrency_key="u1"), job(T0, task="sync",
                                                                concurrency_key="u2")
    store.enqueue([busy, free], now=T0)
    limits = FlowLimits(key_concurrency={"sync": 1})
    with psycopg.connect(url, autocommit=True) as other_host:
        other_host.execute("BEGIN")  # mid-claim of key u1, holding its lock
        other_host.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                           (key_lock_name("sync", "u1"),))
        taken: list[str] = []
        claimer = threading.Thread(target=lambda: taken.extend(c.id for c in store.claim(
            now=T0, owner="h1:1:1", lease_seconds=30, want=5, limits=limits).claimed))
        claimer.start()
        claimer.join(10)
        waited = claimer.is_alive()
        other_host.execute("ROLLBACK")
    claimer.join(30)
    assert not waited and taken == [free.id]
    assert [c.id for c in store.claim(now=T0, owner="h1:1:1", lease_seconds=30, want=5,
                                      limits=limits).claimed] == [busy.id]
    store.db.close()


def test_a_revocation_written_on_another_host_is_read_after_a_claim_found_none(url):
    worker, other_host = _store(url), _store(url)
    stop = worker.listen(lambda: None)
    assert stop is not None
    try:
        wait_for(lambda: worker.db.listening, message="the listener")
        worker.enqueue([job(T0)], now=T0)
        [claimed] = worker.claim(now=T0, owner="h1:1:1", lease_seconds=30, want=1).claimed
        # The claim found no revocation: the worker answers without a read ...
        assert worker.db.knows_no_revocations()
        assert worker.kv_peek_many([f"r:{claimed.id}"], now=T0) == {}
        other_host.kv_put(f"r:{claimed.id}", b"revoked")
        # ... until a revocation is written anywhere: then it reads again.
        wait_for(lambda: worker.kv_peek_many([f"r:{claimed.id}"], now=T0)
                 == {f"r:{claimed.id}": b"revoked"}, message="the revocation to be read")
        assert worker.kv_pop(f"r:{claimed.id}", now=T0) == b"revoked"
    finally:
        stop()
        worker.db.close()
        other_host.db.close()


def test_without_listening_revocations_are_always_read(url):
    worker, other_host = _store(url), _store(url)
    worker.enqueue([job(T0)], now=T0)
    [claimed] = worker.claim(now=T0, owner="h1:1:1", lease_seconds=30, want=1).claimed
    other_host.kv_put(f"r:{claimed.id}", b"revoked")
    assert worker.kv_peek_many([f"r:{claimed.id}"], now=T0) == {f"r:{claimed.id}": b"revoked"}
    worker.db.close()
    other_host.db.close()


def test_a_key_held_by_a_runner_in_another_schema_holds_nothing_back(url):
    """Advisory locks are database-wide: a runner in another schema of the same
    database claiming the same task and key must not hold this one back."""
    store = _store(url)
    wanted = job(T0, task="sync", concurrency_key="u1")
    store.enqueue([wanted], now=T0)
    with fresh_schema() as elsewhere, psycopg.connect(elsewhere, autocommit=True) as other:
        other.execute("BEGIN")  # mid-claim of key u1 in the other schema
        other.execute(f"SELECT pg_advisory_xact_lock({lock_key('%s')})",
                      (key_lock_name("sync", "u1"),))
        claimed = store.claim(now=T0, owner="h1:1:1", lease_seconds=30, want=5,
                              limits=FlowLimits(key_concurrency={"sync": 1})).claimed
        assert [c.id for c in claimed] == [wanted.id]


def test_a_version_5_database_gets_parking_and_keeps_its_waiting_jobs(url):
    store = _store(url)
    keyed = [job(T0 - 10 + n, task="sync", concurrency_key="big") for n in range(5)]
    store.enqueue(keyed, now=T0 - 10)
    store.db.write(lambda c: c.execute(
        "DROP TRIGGER runner_job_room_update ON runner_job; "
        "DROP TRIGGER runner_job_room_delete ON runner_job; "
        "DROP TRIGGER runner_job_unpark_changed ON runner_job; "
        "DROP INDEX runner_job_parked; DROP INDEX runner_job_claim; "
        "DROP INDEX runner_job_queue_claim; DROP TABLE runner_room; "
        "ALTER TABLE runner_job DROP COLUMN parked; "
        f"CREATE INDEX runner_job_claim ON runner_job (priority DESC, run_at) "
        f"WHERE state IN {WAITING_SQL}; "
        f"CREATE INDEX runner_job_queue_claim ON runner_job (queue, priority DESC, run_at) "
        f"WHERE state IN {WAITING_SQL}; "
        "UPDATE runner_meta SET value = '5' WHERE key = 'schema'"))
    forget(store.db)
    prepare(store.db)
    assert store.db.query("SELECT value FROM runner_meta WHERE key = 'schema'")[0][0] == str(
        SCHEMA_VERSION)
    definition = store.db.query("SELECT pg_get_indexdef('runner_job_claim'::regclass)")[0][0]
    assert "parked IS NULL" in definition
    limits = FlowLimits(key_concurrency={"sync": 1})
    first = store.claim(now=T0, owner="h:1:1", lease_seconds=30, want=3, limits=limits)
    assert [c.id for c in first.claimed] == [keyed[0].id]
    assert store.db.query("SELECT count(*) FROM runner_job WHERE parked IS NOT NULL")[0][0] == 4
    store.complete([Ack(keyed[0].id, 1, T0, T0)])
    again = store.claim(now=T0, owner="h:1:1", lease_seconds=30, want=3, limits=limits)
    assert [c.id for c in again.claimed] == [keyed[1].id]
    store.db.close()


@pytest.mark.parametrize(("verb", "dead"), [("retry", True), ("discard", True), ("cancel", False)])
def test_a_bulk_action_leaves_alone_a_job_that_changed_while_it_waited_for_the_row(
        url, verb, dead):
    # Given a job a bulk action counted (dead for retry and discard, waiting for cancel)
    store = _store(url)
    target = job(T0)
    store.enqueue([target], now=T0)
    if dead:
        [c] = store.claim(now=T0, owner="w:1:1", lease_seconds=30, want=1).claimed
        store.bury(c.id, c.attempt, failure(), worker="w:1:1", now=T0, reason="x")
    plan = control.plan_bulk(store, verb, JobFilter())
    assert plan.count == 1
    # and another transaction that holds its row while changing it (a worker finishing
    # a retried run, or claiming the waiting job)
    moved = "completed" if dead else "executing"
    other = psycopg.connect(url)
    other.execute("UPDATE runner_job SET state = %s WHERE id = %s", (moved, target.id))
    done: list[int] = []
    action = threading.Thread(target=lambda: done.append(
        control.run_bulk(store, plan, now=T0 + 1)))
    action.start()
    try:
        # When the bulk action reaches the row while that transaction holds it
        wait_for(lambda: other.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()").fetchone()[0] > 0,
            message="the bulk action waiting for the row")
        other.commit()
    finally:
        action.join(30)
        other.close()
    # Then it leaves the job as the other transaction left it, and counts nothing
    assert done == [0]
    assert store.get_job(target.id).state == moved
    store.db.close()


def test_drop_oldest_leaves_alone_a_job_a_worker_claimed_while_it_waited_for_the_row(url):
    # Given a queue one job over its bound, its oldest job locked by a worker's claim
    store = _store(url)
    oldest, newer = job(T0, queue="feed"), job(T0 + 1, queue="feed")
    store.enqueue([oldest, newer], now=T0 + 10)
    store.db.close()
    dropper = psycopg.connect(url)
    claimer = psycopg.connect(url)
    claimer.execute("SELECT id FROM runner_job WHERE id = %s FOR UPDATE", (oldest.id,))
    dropped: list[list[str]] = []
    action = threading.Thread(target=lambda: dropped.append(drop_oldest(
        dropper, "feed", QueueBound(1, "drop_oldest"), now=T0 + 20)))
    action.start()
    try:
        # When the drop reaches that row while the claim holds it, and the claim commits
        wait_for(lambda: claimer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND pid = %s", (dropper.info.backend_pid,)).fetchone()[0] > 0,
            message="the drop waiting for the row")
        claimer.execute("UPDATE runner_job SET state = 'executing' WHERE id = %s", (oldest.id,))
        claimer.commit()
        action.join(30)
        dropper.commit()
    finally:
        claimer.close()
        dropper.close()
    # Then the running job is not dropped: it left the waiting jobs the bound counts
    check = _store(url)
    assert dropped == [[]]
    assert [check.get_job(j.id).state for j in (oldest, newer)] == ["executing", "available"]
    check.db.close()


def _holding_the_jobs_table(address: str) -> psycopg.Connection:
    """A second session holding ``runner_job`` as a migration or a long ``LOCK`` would."""
    holder = psycopg.connect(address)
    holder.execute("LOCK TABLE runner_job IN ACCESS EXCLUSIVE MODE")
    return holder


def test_a_store_opened_with_a_lock_wait_gives_up_on_a_held_lock_naming_it(url):
    from runner.errors import DatabaseLocked
    from runner.store.factory import open_store

    _store(url).enqueue([job(T0)], now=T0)
    bounded = open_store(url, lock_wait=0.5)
    holder = _holding_the_jobs_table(url)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseLocked, match=r"waited 0\.5s for a lock .*another session"):
            bounded.count_in_state(JobState.AVAILABLE)
        assert time.monotonic() - started < 5
    finally:
        holder.close()
    assert bounded.count_in_state(JobState.AVAILABLE) == 1  # once released, it reads again
    bounded.close()


def test_a_workers_store_waits_for_a_held_lock_as_long_as_it_is_held(url):
    from runner.store.factory import open_store

    worker = open_store(url)
    # Its long maintenance statements must never be cut short by a bound meant for people.
    assert worker.db.query("SHOW lock_timeout") == [("0",)]
    assert worker.db.query("SHOW statement_timeout") == [("0",)]
    worker.enqueue([job(T0)], now=T0)
    holder = _holding_the_jobs_table(url)
    read: list[int] = []
    thread = threading.Thread(target=lambda: read.append(worker.count_in_state(JobState.AVAILABLE)))
    thread.start()
    try:
        thread.join(1.5)
        assert thread.is_alive() and not read  # still waiting, not refused
    finally:
        holder.close()
    thread.join(10)
    assert read == [1]
    worker.close()
