"""Events: patterns, emit, fan-out, the event log, idempotency keys, replay, locks, load."""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import pytest

from runner import SerializationError, emit, emit_many, replay
from runner.cli import main
from runner.errors import ConfigError, InvalidAction
from runner.event_patterns import check_pattern, matches
from runner.events.delivery import _dispatch, handlers_for, unknown_handler_sections
from runner.events.replay import REPLAY_TASK, replay_events, replay_matching
from runner.events.settings import parse_events
from runner.settings_loader import parse_settings
from runner.store.sqlite import events as store
from runner.store.sqlite import queries
from runner.testing import drain, immediate
from tests import event_handlers
from tests.conftest import read_records
from tests.event_support import count, db_of, write_events_settings


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return write_events_settings(tmp_path)


# -- patterns -------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("user.signup", "user.signup", True),           # exact
    ("user.signup", "user.signin", False),
    ("user.signup", "user.signup.email", False),
    ("user.*", "user.signup", True),                # one segment
    ("user.*", "user", False),
    ("user.*", "user.signup.email", False),
    ("*.signup", "user.signup", True),              # leading wildcard
    ("*.signup", "team.signup", True),
    ("*.signup", "user.signup.email", False),
    ("user.**", "user", True),                      # any depth, including zero
    ("user.**", "user.signup", True),
    ("user.**", "user.signup.email", True),
    ("user.#", "user.a.b.c", True),                 # AMQP spelling
    ("**", "anything.at.all", True),
    ("**.failed", "job.step.failed", True),
    ("**.failed", "failed", True),
    ("a.*.c", "a.b.c", True),
    ("a.*.c", "a.b.d", False),
    ("a.**.c", "a.c", True),
    ("a.**.c", "a.x.y.c", True),
    ("user.*", "team.signup", False),               # no match
    ("order", "orders", False),
])
def test_pattern_table(pattern, name, expected):
    assert matches(check_pattern(pattern), name) is expected


@pytest.mark.parametrize("bad", ["", "user.", "user*", "a..b", "us er", "a.b*c"])
def test_bad_patterns_are_rejected(bad):
    with pytest.raises(ConfigError):
        check_pattern(bad)


@pytest.mark.parametrize("command", [["events"], ["events", "replay"]], ids=["list", "replay"])
@pytest.mark.parametrize("bad", ["user..x", "user*", "a.b c"])
def test_a_bad_name_pattern_in_the_cli_is_refused_as_event_handler_refuses_it(
        huey, settings_file, capsys, command, bad):
    with pytest.raises(ConfigError) as refused:
        check_pattern(bad)
    assert main(["--settings", str(settings_file), *command, "--name", bad]) == 65
    assert capsys.readouterr().err == f"error: {refused.value}\n"
    with pytest.raises(SerializationError, match=re.escape(str(refused.value))):
        replay_matching(bad)


# -- emit and fan-out --------------------------------------------------------------

def test_one_emit_fans_out_to_three_handlers_one_dies_others_complete_once(huey, record_file):
    # Given three handlers matching shop.order.placed (exact, *, **), one always failing
    assert {h.name for h in handlers_for("shop.order.placed")} == {
        "order_exact", "order_wild", "order_broken"}
    # When one event is emitted and the worker drains
    event_id = emit("shop.order.placed", {"n": 7})
    assert count(huey, "SELECT count(*) FROM runner_event") == 1
    drain(include_scheduled=True)
    # Then three jobs exist, linked to the event; the broken one is dead after 3 attempts
    jobs = db_of(huey).query("SELECT task, state, attempt FROM runner_job WHERE event_id = ?",
                             (event_id,))
    assert sorted(jobs) == [("order_broken", "dead", 3), ("order_exact", "completed", 1),
                            ("order_wild", "completed", 1)]
    lines = Counter(line.split()[0] for line in read_records(record_file))
    assert lines == {"exact": 1, "wild": 1, "broken": 3}
    event = store.get_event(db_of(huey), event_id)
    assert (event.status, event.handlers, event.name, event.payload) == (
        "dispatched", 3, "shop.order.placed", {"n": 7})
    outcomes = {o.handler: o.outcome
                for o in store.handler_outcomes(db_of(huey), [event_id])[event_id]}
    assert outcomes == {"order_exact": "completed", "order_wild": "completed",
                        "order_broken": "dead"}


def test_dispatch_that_runs_twice_writes_no_duplicate_handler_jobs(huey):
    # Given an event whose dispatch job committed its fan-out
    event_id = emit("shop.order.placed", {"n": 1})
    _dispatch(event_id)
    # When the dispatch runs again (its worker died after the commit) and the job is rerun
    _dispatch(event_id)
    dispatch_job = store.get_event(db_of(huey), event_id).dispatch_job
    db_of(huey).write(lambda c: c.execute(
        "UPDATE runner_job SET state='available' WHERE id=?", (dispatch_job,)))
    drain(include_scheduled=True)
    # Then each handler still has exactly one job
    assert count(huey, "SELECT count(*) FROM runner_job WHERE event_id = ?", (event_id,)) == 3


def test_events_emitted_while_a_dispatch_job_waits_share_it(huey, record_file):
    # Given three events emitted while no worker runs, and one delayed event
    ids = [emit("early.bird", {"n": n}) for n in range(3)]
    delayed = emit("early.bird", {"n": 9}, delay=3600)
    # Then the due ones share one waiting dispatch job; the delayed one has its own
    dispatchers = count(huey, "SELECT count(*) FROM runner_job WHERE task = ?",
                        ("runner.events.dispatch",))
    assert dispatchers == 2
    assert len({store.get_event(db_of(huey), i).dispatch_job for i in ids}) == 1
    # When the worker drains: the one dispatch fans out all three due events
    assert drain() == 1 + 3
    assert sorted(r.split()[1] for r in read_records(record_file)) == ["0", "1", "2"]
    assert {store.get_event(db_of(huey), i).status for i in ids} == {"dispatched"}
    assert store.get_event(db_of(huey), delayed).status == "pending"


def test_one_dispatch_sweeps_up_due_events_and_settles_their_own_jobs(huey, record_file):
    # Given two events whose dispatch jobs were claimed apart (a worker took the first)
    first = emit("early.bird", {"n": 1})
    claimed = huey.jobs.claim_due(1)
    second = emit("early.bird", {"n": 2})
    assert store.get_event(db_of(huey), second).dispatch_job != claimed[0].id
    # When the first dispatch runs, it sweeps the second event up too
    from runner.runner_huey import _local

    _local.claimed = claimed[0]
    huey.execute(huey.deserialize_task(claimed[0].data))
    huey.jobs.flush_acks()
    assert {store.get_event(db_of(huey), i).status for i in (first, second)} == {"dispatched"}
    # Then the second event's own dispatch job is settled without running
    assert count(huey, "SELECT count(*) FROM runner_job WHERE reason LIKE "
                       "'event dispatched by another%'") == 1


def test_event_without_handler_is_recorded_unhandled_with_a_warning(huey, caplog):
    event_id = emit("nobody.listens", {"x": 1})
    with caplog.at_level(logging.WARNING, logger="runner.events"):
        drain()
    assert store.get_event(db_of(huey), event_id).status == "unhandled"
    assert count(huey, "SELECT count(*) FROM runner_job WHERE event_id = ?", (event_id,)) == 0
    assert any(event_id in r.getMessage() and "no handler" in r.getMessage()
               for r in caplog.records)


def test_invalid_name_or_data_is_named_and_nothing_is_written(huey):
    with pytest.raises(SerializationError, match=r"data\['items'\]\[1\]"):
        emit("shop.order.placed", {"items": [1, object()]})
    with pytest.raises(SerializationError, match="nan"):
        emit("shop.order.placed", {"price": float("nan")})
    with pytest.raises(SerializationError, match="invalid event name"):
        emit("shop..order")
    with pytest.raises(SerializationError, match="^emit_many item 2 of 2: "):
        emit_many([("a.b", {}), ("c.d", {1, 2})])  # a set is not JSON
    assert count(huey, "SELECT count(*) FROM runner_event") == 0
    assert count(huey, "SELECT count(*) FROM runner_job") == 0


@pytest.mark.parametrize(("data", "named"), [
    ({1: "one", "1": "uno"}, r"data key 1 \(int\)"),  # JSON would store both as "1"
    ({"a": [{"b": {None: 1}}]}, r"data\['a'\]\[0\]\['b'\] key None \(NoneType\)"),
    ({"on": {True: 1}}, r"data\['on'\] key True \(bool\)"),
    ([{"x": 1}, {2.5: "half"}], r"data\[1\] key 2.5 \(float\)"),
], ids=["int", "nested-none", "bool", "float-in-list"])
def test_a_key_that_is_not_a_string_is_refused_naming_where_and_nothing_is_written(
        huey, data, named):
    with pytest.raises(SerializationError, match=named + r" is not a string.*nothing was written"):
        emit("shop.order.placed", data)
    with pytest.raises(SerializationError, match=r"item 2 of 2: event 'a.b': " + named):
        emit_many([("a.b", {}), ("a.b", data)])
    with pytest.raises(SerializationError, match=named):
        emit_many([{"name": "a.b", "data": data, "key": "k"}])
    assert count(huey, "SELECT count(*) FROM runner_event") == 0
    assert count(huey, "SELECT count(*) FROM runner_job") == 0


@pytest.mark.parametrize("bad", [["user.signup"], 5, None, "user..signup", "x" * 201])
def test_a_bad_name_is_refused_after_good_ones_were_accepted(huey, bad):
    emit_many([("user.signup", {})] * 3)
    with pytest.raises(SerializationError, match="invalid event name"):
        emit_many([("user.signup", {}), (bad, {})])
    assert count(huey, "SELECT count(*) FROM runner_event") == 3


@pytest.mark.parametrize("delay", [float("nan"), float("inf"), -1, True, "5"])
def test_a_delay_that_is_not_finite_seconds_is_refused_and_nothing_is_written(huey, delay):
    # NaN used to reach the database (a bare sqlite3.IntegrityError on run_at); infinity
    # was stored, and the event waited forever without being dispatched.
    with pytest.raises(SerializationError, match=r"event 'shop.order.placed': delay must be"):
        emit("shop.order.placed", {"n": 1}, delay=delay)
    with pytest.raises(SerializationError, match=r"item 2 of 2: event 'a.b': delay must be"):
        emit_many([("a.b", {}), {"name": "a.b", "delay": delay}])
    assert count(huey, "SELECT count(*) FROM runner_event") == 0
    assert count(huey, "SELECT count(*) FROM runner_job") == 0


@pytest.mark.parametrize("item", [("a.b", {"n": 1}, "k-2"), ["a.b", {}, None, 5], ()],
                         ids=["three", "four", "empty"])
def test_an_emit_many_tuple_of_other_than_two_items_points_to_the_mapping_form(huey, item):
    with pytest.raises(SerializationError, match=(
            rf"item 2 of 2: a tuple is \(name, data\), got {len(item)} item\(s\); give key and "
            r"delay in the mapping form \{'name': \.\.\., 'data': \.\.\., 'key': \.\.\., "
            r"'delay': \.\.\.\}; nothing was written")):
        emit_many([("a.b", {}), item])
    assert count(huey, "SELECT count(*) FROM runner_event") == 0


def test_circular_data_is_refused_with_a_clear_error(huey):
    data: dict = {"n": 1}
    data["self"] = data
    with pytest.raises(SerializationError, match="circular"):
        emit("shop.order.placed", data)
    assert count(huey, "SELECT count(*) FROM runner_event") == 0
    # the encoder is not left in a bad state by the failure
    event_id = emit("shop.order.placed", {"n": 2, "nested": [{"n": 3}]})
    assert store.get_event(db_of(huey), event_id).data == '{"n":2,"nested":[{"n":3}]}'


def test_a_large_emit_many_writes_every_event_with_its_own_key_and_data(huey):
    # 100 events: statements of 64, 32 and 4 rows; one in ten has a key, one is repeated
    items = [{"name": "bulk.item", "data": {"n": i}, **({"key": f"k{i}"} if i % 10 == 0 else {})}
             for i in range(99)] + [{"name": "bulk.item", "data": {"n": 99}, "key": "k0"}]
    ids = emit_many(items)
    assert ids[99] == ids[0] and len(set(ids)) == 99
    rows = {r[0]: r[1:] for r in db_of(huey).query(
        "SELECT id, data, key, dispatch_job FROM runner_event")}
    assert len(rows) == 99
    for i in range(99):
        data, key, dispatch_job = rows[ids[i]]
        assert data == f'{{"n":{i}}}'
        assert key == (f"k{i}" if i % 10 == 0 else None)
        assert dispatch_job is not None


def test_emit_many_writes_all_events_and_one_dispatch_job(huey, record_file):
    ids = emit_many([("shop.order.placed", {"n": i}) for i in range(3)]
                    + [{"name": "early.bird", "data": {"n": 9}}])
    assert len(set(ids)) == 4
    assert count(huey, "SELECT count(*) FROM runner_event") == 4
    assert count(huey, "SELECT count(*) FROM runner_job") == 1
    drain(include_scheduled=True)
    assert sorted(r.split()[1] for r in read_records(record_file) if r.startswith("exact")) == \
        ["0", "1", "2"]


def test_idempotency_key_inside_and_after_the_window(huey):
    t0 = 1_000_000.0
    first = emit("shop.order.placed", {"n": 1}, key="order-1", now=t0)
    # Inside the 60 s window: the first id, nothing written
    assert emit("shop.order.placed", {"n": 1}, key="order-1", now=t0 + 59) == first
    assert count(huey, "SELECT count(*) FROM runner_event") == 1
    assert count(huey, "SELECT count(*) FROM runner_job") == 1
    # Another key is another event; in one batch a repeated key is written once
    other, again = emit_many([{"name": "a.b", "key": "order-2"},
                              {"name": "a.b", "key": "order-2"}], now=t0 + 1)
    assert other == again != first
    # After the window: a new event
    later = emit("shop.order.placed", {"n": 1}, key="order-1", now=t0 + 61)
    assert later not in (first, other)
    assert count(huey, "SELECT count(*) FROM runner_event") == 3


def test_replay_of_only_the_failed_handler_after_a_fix(huey, record_file, monkeypatch):
    # Given an event whose handler "flaky" died while "steady" completed
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    event_id = emit("fix.me", {"n": 5})
    drain(include_scheduled=True)
    outcomes = {o.handler: o.outcome
                for o in store.handler_outcomes(db_of(huey), [event_id])[event_id]}
    assert outcomes == {"flaky": "dead", "steady": "completed"}
    # When the code is fixed and only failed handlers are replayed
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    replay_job = replay(event_id, only_failed=True)
    assert queries.get_job(db_of(huey), replay_job).task == REPLAY_TASK
    assert store.get_event(db_of(huey), event_id).deliveries == 1  # the worker delivers
    drain(include_scheduled=True)
    # Then only flaky ran again, as a new job linked to the same event, and completed
    assert Counter(read_records(record_file)) == {"flaky 5 broken": 2, "steady 5": 1,
                                                  "flaky 5 fixed": 1}
    outcomes = {o.handler: (o.outcome, o.deliveries)
                for o in store.handler_outcomes(db_of(huey), [event_id])[event_id]}
    assert outcomes == {"flaky": ("completed", 2), "steady": ("completed", 1)}
    assert store.get_event(db_of(huey), event_id).deliveries == 2
    # Nothing failed any more: a second replay of the failed ones delivers nothing
    replay(event_id, only_failed=True)
    drain()
    assert store.get_event(db_of(huey), event_id).deliveries == 2
    replay(event_id, "steady")
    drain()
    assert Counter(read_records(record_file))["steady 5"] == 2


def test_two_replays_of_the_failed_handlers_running_at_once_deliver_once(
        huey, record_file, monkeypatch):
    # Given an event whose handler "flaky" died, then was fixed
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    event_id = emit("fix.me", {"n": 6})
    drain(include_scheduled=True)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    # When two replays of the failed handlers run at once: both read flaky's newest
    # delivery as dead before either writes (two worker threads)
    replay(event_id, only_failed=True)
    replay(event_id, only_failed=True)
    jobs = huey.jobs
    before = jobs.store.handler_outcomes([event_id])
    monkeypatch.setattr(jobs.store, "handler_outcomes", lambda ids: before)
    drain(include_scheduled=True)
    # Then flaky got the event once more, not twice
    assert Counter(read_records(record_file))["flaky 6 fixed"] == 1
    assert store.get_event(db_of(huey), event_id).deliveries == 2


def test_a_replay_of_failed_handlers_by_name_counts_only_events_with_one(
        huey, record_file, monkeypatch, settings_file, capsys):
    # Given two dispatched fix.me events, only the first with a dead handler (flaky)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    failed = emit("fix.me", {"n": 1})
    drain(include_scheduled=True)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    fine = emit("fix.me", {"n": 2})
    drain(include_scheduled=True)
    # When the failed handlers of every fix.* event are replayed
    request = replay_matching("fix.*", only_failed=True)
    # Then only the event with a failed handler is carried; the other is named apart
    assert (request.events, request.nothing_failed) == ((failed,), (fine,))
    assert main(["--settings", str(settings_file), "events", "replay", "--name", "fix.*",
                 "--only-failed"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("replay of 1 event(s) queued as job(s) ")
    assert "; 1 more matching event(s) have no failed handler (nothing to redeliver)" in out
    # A handler that never failed: nothing to replay, and the CLI says why
    request = replay_matching("fix.*", handler="steady", only_failed=True)
    assert (request.jobs, request.nothing_failed) == ((), (fine, failed))  # newest first
    assert main(["--settings", str(settings_file), "events", "replay", "--name", "fix.*",
                 "--handler", "steady", "--only-failed"]) == 0
    assert capsys.readouterr().out == ("2 matching event(s) have no failed handler 'steady'; "
                                       "nothing to replay\n")


def test_a_replay_of_the_failed_handlers_of_given_events_enqueues_only_for_a_failed_one(
        huey, record_file, monkeypatch, settings_file, capsys):
    # Given one fix.me event with a dead handler (flaky) and one whose handlers all completed
    monkeypatch.setitem(event_handlers.FIXED, "flaky", False)
    failed = emit("fix.me", {"n": 1})
    drain(include_scheduled=True)
    monkeypatch.setitem(event_handlers.FIXED, "flaky", True)
    fine = emit("fix.me", {"n": 2})
    drain(include_scheduled=True)
    # When the failed handlers of both are replayed by id
    request = replay_events([failed, fine], only_failed=True)
    # Then one replay job carries the failed one; the other is named apart
    assert (len(request.jobs), request.events, request.nothing_failed) == (1, (failed,), (fine,))
    # And for the fine one alone nothing is enqueued, and the CLI says so
    jobs_before = count(huey, "SELECT count(*) FROM runner_job")
    assert replay_events([fine], only_failed=True).jobs == ()
    assert main(["--settings", str(settings_file), "events", "replay", "--id", fine,
                 "--only-failed"]) == 0
    assert capsys.readouterr().out == ("1 matching event(s) have no failed handler; "
                                       "nothing to replay\n")
    assert count(huey, "SELECT count(*) FROM runner_job") == jobs_before


def test_a_replay_job_run_twice_delivers_once(huey, record_file):
    # Given a replay job whose worker died after writing the new deliveries
    event_id = emit("fix.me", {"n": 8})
    drain(include_scheduled=True)
    replay_job = replay(event_id, "steady")
    drain()
    db = db_of(huey)
    db.write(lambda conn: conn.execute(
        "UPDATE runner_job SET state = 'available' WHERE id = ?", (replay_job,)))
    # When it runs again
    drain()
    # Then the handler got the event once more, not twice
    assert Counter(read_records(record_file))["steady 8"] == 2
    assert store.get_event(db, event_id).deliveries == 2


def test_replay_of_a_handler_the_worker_lacks_fails_the_replay_job_saying_so(huey):
    event_id = emit("fix.me", {"n": 9})
    drain(include_scheduled=True)
    replay_job = replay(event_id, "gone_handler")
    drain()
    job = queries.get_job(db_of(huey), replay_job)
    assert job.state == "dead"
    assert "no handler 'gone_handler' in this worker" in job.error_message


def test_replay_to_one_handler_skips_events_it_does_not_subscribe_to(huey, record_file):
    # Given two dispatched events, only one of which the handler "steady" subscribes to
    fix = emit("fix.me", {"n": 4})
    other = emit("early.bird", {"n": 5})
    drain(include_scheduled=True)
    # When both are replayed to "steady" (as `events replay --name ... --handler` does)
    from runner.events.replay import replay_events
    request = replay_events([fix, other], "steady")
    drain()
    # Then steady got its event again, and the replay job, which this worker has
    # every handler for, completed instead of dying with "no handler 'steady'"
    assert Counter(read_records(record_file))["steady 4"] == 2
    job = queries.get_job(db_of(huey), request.jobs[0])
    assert (job.state, job.error_message) == ("completed", None)


def test_current_event_names_the_event_in_a_worker_and_in_immediate_mode(huey, record_file):
    # Given a handler that reads current_event()
    queued = emit("who.queued", {"n": 1}, key="k1")
    drain(include_scheduled=True)
    # When the same is emitted in immediate mode (handlers run at the call)
    with immediate():
        inline = emit("who.inline", {"n": 2}, key="k2")
    # Then the handler saw its event both times, with the id emit() returned
    assert read_records(record_file) == [f"who 1 {queued} who.queued k1",
                                         f"who 2 {inline} who.inline k2"]


def test_a_pending_event_is_not_replayed_its_dispatch_delivers_it(huey):
    event_id = emit("fix.me", {"n": 1})
    with pytest.raises(InvalidAction, match="not been dispatched yet"):
        replay(event_id)


def test_events_settings_override_handler_options_and_unknown_keys_fail():
    settings = parse_settings({"events": {
        "patterns": {"fix.*": {"queue": "events"}},
        "handlers": {"steady": {"max_retries": 7, "timeout": 4}}}})
    options = handlers_for("fix.me")[1].wrapper.resolve(settings)
    assert (options.queue, options.policy.retry_limit, options.timeout) == (None or "default",
                                                                             7, 4.0)
    with pytest.raises(ConfigError, match="dedupe_windw"):
        parse_events({"dedupe_windw": 5})
    with pytest.raises(ConfigError, match="tiemout"):
        parse_events({"handlers": {"steady": {"tiemout": 1}}})


# -- against a locked database --------------------------------------------------------

# -- with real worker processes ---------------------------------------------------------



def test_handler_sections_naming_no_registered_handler_are_found():
    settings = parse_settings({"events": {"handlers": {
        "order_exact": {"timeout": 5}, "order_exakt": {"timeout": 5}, "gone": {}}}})
    assert unknown_handler_sections(settings) == ["gone", "order_exakt"]
