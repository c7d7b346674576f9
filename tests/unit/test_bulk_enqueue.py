"""Bulk enqueue: ``task.map()`` and ``enqueue_many()``, one transaction per batch."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from huey import signals as S

from runner import QueueFull, SerializationError, configure, enqueue_many
from runner.sections import QueueSection
from runner.store.sqlite import queries
from runner.testing import drain, immediate
from tests import jobs


def bounded(huey, size: int, on_full: str = "reject"):
    settings = huey.settings
    configure(replace(settings, worker=replace(settings.worker, queue_size=size),
                      queues={"default": QueueSection(on_full=on_full, block_timeout=0.5)}))


def test_map_enqueues_one_job_per_item_and_each_runs_once(huey):
    results = jobs.add.map([(1, n) for n in range(50)])
    assert queries.count_jobs(huey.jobs.db) == 50
    assert drain() == 50
    assert [r.get() for r in results] == [1 + n for n in range(50)]


def test_map_takes_single_arguments_as_one_argument(huey, record_file):
    jobs.record_run.map(["a", "b"])
    drain()
    assert sorted(line.split()[0] for line in record_file.read_text().splitlines()) == ["a", "b"]


def test_enqueue_many_keeps_the_order_and_the_options_of_each_call(huey):
    calls = [jobs.add.s(1, 1), jobs.add.s(2, 2, priority=5),
             jobs.record_run.s("later", delay=3600)]
    results = enqueue_many(calls)
    assert [r.id for r in results] == [c.id for c in calls]
    rows = {r.id: queries.get_job(huey.jobs.db, r.id) for r in results}
    assert rows[calls[1].id].priority == 5
    assert rows[calls[2].id].state == "scheduled"
    assert drain() == 2


def test_a_batch_that_would_overfill_the_queue_is_not_written(huey):
    bounded(huey, 5)
    jobs.add.map([(1, n) for n in range(3)])
    with pytest.raises(QueueFull) as raised:
        jobs.add.map([(2, n) for n in range(3)])
    # The queue is not full: the batch is bigger than its room, and the error says so
    assert str(raised.value).startswith(
        "queue 'default' has room for 2 more jobs (3 waiting, bound 5); this batch adds 3; "
        "nothing was written")
    assert queries.count_jobs(huey.jobs.db) == 3


def test_a_refused_batch_counts_against_the_full_queue_only_its_own_jobs(huey):
    # Given a full reject queue "mail" beside an unbounded default queue
    settings = huey.settings
    configure(replace(settings, queues={"mail": QueueSection(max_size=1, on_full="reject")}))
    enqueue_many([jobs.mail_record.s(0)])
    # When a batch of one default job and two mail jobs is refused
    with pytest.raises(QueueFull, match="queue 'mail' is full"):
        enqueue_many([jobs.add.s(1, 1), jobs.mail_record.s(1), jobs.mail_record.s(2)])
    # Then the two mail jobs are counted as rejected, the default one is not
    assert huey.jobs.store.backpressure_totals() == {"mail": (2, 0)}


def test_batches_before_the_full_one_stay_enqueued_and_the_error_says_how_many(huey):
    bounded(huey, 3)
    with pytest.raises(QueueFull, match="2 of 4 jobs were enqueued before"):
        jobs.add.map([(1, n) for n in range(4)], batch_size=2)
    assert queries.count_jobs(huey.jobs.db) == 2


def test_an_argument_that_cannot_be_serialized_is_named_and_nothing_is_written(huey):
    # Items and arguments are both counted from 1, and the call named is the one made
    calls = [jobs.add.s(1, 1), jobs.add.s(1, threading.Lock())]
    with pytest.raises(SerializationError,
                       match=r"^enqueue_many item 2 of 2: task 'add': argument 2 \(lock"):
        enqueue_many(calls, batch_size=1)
    with pytest.raises(SerializationError,
                       match=r"^map item 3 of 3: task 'add': argument 2 \(function"):
        jobs.add.map([(1, 1), (2, 2), (3, lambda: 3)])
    assert queries.count_jobs(huey.jobs.db) == 0


def test_map_names_its_items_as_map_also_when_signals_are_heard(huey):
    # Given a receiver of SIGNAL_ENQUEUED (map then builds a Task per job)
    @huey.signal(S.SIGNAL_ENQUEUED)
    def on_enqueued(signal, task):
        pass

    try:
        with pytest.raises(SerializationError, match=r"^map item 1 of 2: task 'record_run'"):
            jobs.record_run.map([(threading.Lock(),), ("b",)])
    finally:
        huey.disconnect_signal(on_enqueued)
    assert queries.count_jobs(huey.jobs.db) == 0


def test_something_other_than_a_task_call_is_refused_before_writing(huey):
    with pytest.raises(TypeError, match="item 2 of 2: expected a task call"):
        enqueue_many([jobs.add.s(1, 1), (1, 1)])
    with pytest.raises(ValueError, match="batch_size"):
        enqueue_many([jobs.add.s(1, 1)], batch_size=0)
    assert queries.count_jobs(huey.jobs.db) == 0


def test_enqueued_signal_is_sent_for_every_job(huey):
    seen = []

    @huey.signal(S.SIGNAL_ENQUEUED)
    def on_enqueued(signal, task):
        seen.append(task.id)

    try:
        results = jobs.add.map([(1, 1), (2, 2)])
    finally:
        huey.disconnect_signal(on_enqueued)
    assert seen == [r.id for r in results]


def test_map_runs_inline_in_immediate_mode(huey):
    with immediate():
        assert [r.get() for r in jobs.add.map([(1, 2), (3, 4)])] == [3, 7]


def test_a_bulk_enqueue_counts_each_job_as_enqueued_and_waiting_once(huey):
    jobs.add.map([(1, n) for n in range(7)], batch_size=3)
    enqueue_many([jobs.add.s(2, 2), jobs.record_run.s("x")])
    db = huey.jobs.db
    totals = {(t, q): (e, w) for t, q, e, w in db.query(
        "SELECT task, queue, enqueued, waiting FROM runner_job_total")}
    assert totals == {("add", "default"): (8, 0), ("record_run", "default"): (1, 0),
                      ("", "default"): (0, 9)}
    assert db.query("SELECT queue, waiting FROM runner_queue") == [("default", 9)]
    drain()
    assert db.query("SELECT queue, waiting FROM runner_queue") == [("default", 0)]


def test_map_results_are_made_when_read_and_carry_the_options_of_a_single_call(huey):
    group = jobs.add.map([(1, n) for n in range(5)])
    single = jobs.add.s(1, 0)
    huey.new_job(single)  # prepared as an enqueue prepares it
    task = group._results[3].task
    assert (task.args, task.kwargs, task.retries, task.priority, task.timeout, task.queue) == (
        (1, 3), {}, single.retries, single.priority, single.timeout, single.queue)
    assert group._results[-1] is group._results[4] and len(group._results[1:3]) == 2
    (data,) = huey.jobs.db.query("SELECT data FROM runner_job WHERE id = ?", (task.id,))[0]
    stored = huey.deserialize_task(bytes(data))
    assert (stored.id, stored.args, stored.retries, stored.timeout) == (
        task.id, (1, 3), single.retries, single.timeout)


def test_a_map_payload_unpickles_to_the_message_huey_would_write():
    import pickle

    from huey.registry import Message

    from runner.serializers import make_serializer, message_encoder

    encode = message_encoder(make_serializer("pickle"))
    shared, loop = ["x"], []
    loop.append(loop)
    for args in [(), (5,), ("s", "s", shared, shared), (loop,), ("y" * 70_000,),
                 (b"z" * 100_000,)]:
        fields = ("id", "t.add", None, 3, 0, 0, args, {"k": shared}, Message("a", "b"), None,
                  None, None, 300.0, None, 0)
        got = pickle.loads(encode(fields))
        assert type(got) is Message and repr(got) == repr(Message(*fields))
        if len(args) == 4:
            assert got.args[2] is got.args[3]
    json_encode = message_encoder(make_serializer("json"))
    assert make_serializer("json").deserialize(json_encode(("i", "n") + (None,) * 13)) == \
        Message("i", "n")


def test_a_payload_larger_than_one_pickle_frame_is_pickled_once(monkeypatch):
    # A pickle of 64 KiB or more has several frames; it was pickled again as huey's
    # Message, doubling the time a large argument takes to enqueue.
    import pickle

    from huey.registry import Message

    from runner import serializers

    calls = []
    dumps = pickle.dumps

    def counted(*args, **kwargs):
        calls.append(1)
        return dumps(*args, **kwargs)

    monkeypatch.setattr(pickle, "dumps", counted)
    encode = serializers.message_encoder(serializers.make_serializer("pickle"))
    fields = ("id", "t.add", None, 3, 0, 0, (b"z" * 3_000_000, "y" * 100_000), {}, None,
              None, None, None, 300.0, None, 0)
    got = pickle.loads(encode(fields))
    assert repr(got) == repr(Message(*fields))
    assert len(calls) == 1


def test_the_short_argument_view_is_unchanged():
    import datetime
    import json

    from runner.arguments import preview_args

    for args, kwargs in [((), {}), ((5,), {}), ((1, "a", None, 2.5), {"x": [1, {"y": 2}]}),
                         (("é", b"x"), {}), ((datetime.date(2020, 1, 1),), {1: 2}),
                         ((float("nan"),), {"k": (1, 2)})]:
        assert preview_args(args, kwargs) == json.dumps({"args": list(args), "kwargs": kwargs},
                                                        default=repr)


def weighted(huey, **weights: int) -> None:
    configure(replace(huey.settings,
                      queues={name: QueueSection(weight=w) for name, w in weights.items()}))


def calls_over(queues: list[str]) -> list:
    made = []
    for n, queue in enumerate(queues):
        call = jobs.add.s(1, n)
        call.queue = queue
        made.append(call)
    return made


def rows_in_order(huey) -> list[tuple[str, str]]:
    return huey.jobs.db.query("SELECT queue, id FROM runner_job ORDER BY rowid")


def test_a_batch_over_queues_of_unequal_weights_is_written_queue_by_queue(huey):
    weighted(huey, a=3, b=1)
    calls = calls_over(["a", "b", "a", "b", "b", "a"])
    results = enqueue_many(calls)
    assert [r.id for r in results] == [c.id for c in calls]  # results stay in call order
    assert rows_in_order(huey) == [(c.queue, c.id) for c in calls if c.queue == "a"] + [
        (c.queue, c.id) for c in calls if c.queue == "b"]


def test_a_batch_over_queues_of_equal_weights_is_written_in_call_order(huey):
    weighted(huey, a=2, b=2)
    calls = calls_over(["a", "b", "a", "b"])
    enqueue_many(calls)
    assert rows_in_order(huey) == [(c.queue, c.id) for c in calls]


def test_a_weighted_batch_with_unique_keys_is_written_in_call_order(huey):
    weighted(huey, a=3, b=1)
    calls = calls_over(["b", "a", "b", "a"])
    for n, call in enumerate(calls):
        call.unique_key = f"k{n}"
    enqueue_many(calls)
    assert [queue for queue, _ in rows_in_order(huey)] == ["b", "a", "b", "a"]


def test_each_batch_is_grouped_on_its_own_so_batch_boundaries_stay(huey):
    weighted(huey, a=3, b=1)
    calls = calls_over(["b", "a", "b", "a"])
    enqueue_many(calls, batch_size=2)
    assert [queue for queue, _ in rows_in_order(huey)] == ["a", "b", "a", "b"]


def test_a_grouped_batch_is_still_claimed_by_weight_and_in_call_order_within_a_queue(huey):
    weighted(huey, a=3, b=1)
    calls = calls_over(["a", "b"] * 8)
    enqueue_many(calls)
    limits = huey.task_registry.flow_limits(huey.settings)
    claimed = [c.id for c in huey.jobs.store.claim(now=time.time() + 1, owner="w", lease_seconds=60,
                                                   want=8, limits=limits).claimed]
    order = {c.id: c.queue for c in calls}
    by_queue = {q: [i for i in claimed if order[i] == q] for q in ("a", "b")}
    assert len(by_queue["a"]) == 6  # 3 to 1, as if written in call order
    for queue, ids in by_queue.items():  # each queue's first jobs, in call order
        assert ids == [c.id for c in calls if c.queue == queue][:len(ids)]
