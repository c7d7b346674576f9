"""The scheduler with an injected clock: misfire, exactly once, overlap, control, validation."""

from __future__ import annotations

import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from runner import (
    ConfigError,
    InvalidSchedule,
    get_schedule,
    pause_schedule,
    resume_schedule,
    run_schedule_now,
    schedule_runs,
    scheduled_task,
    skip_next_run,
)
from runner.scheduling.definitions import registry
from runner.scheduling.scheduler import Scheduler
from runner.sections import ScheduleOverride
from runner.settings_loader import parse_settings
from runner.testing import drain
from tests import sched_jobs  # noqa: F401 - registers the test schedules

T0 = datetime(2025, 1, 6, 0, 0, 10, tzinfo=UTC)  # a Monday, just after midnight


def ts(delta: timedelta = timedelta()) -> float:
    return (T0 + delta).timestamp()


def definition(name: str = "quarter_hourly", **changes):
    return replace(registry.get(name), **changes)


def scheduler(huey, *definitions, settings=None):
    return Scheduler(huey, settings or huey.settings,
                     definitions=definitions or [definition()])


def jobs_of(huey, name: str) -> list[tuple]:
    return huey.jobs.db.query(
        "SELECT id, state, run_at FROM runner_job WHERE schedule = ? ORDER BY run_at", (name,))


def slots_of(huey, name: str) -> list[datetime]:
    runs = schedule_runs(name, limit=100_000, huey=huey)
    return [datetime.fromtimestamp(r.slot, UTC) for r in runs if r.outcome == "enqueued"]


@pytest.mark.parametrize(("misfire", "max_catchup", "expected"),
                         [("skip", 100, 0), ("once", 100, 1), ("all", 100, 12), ("all", 5, 5)])
def test_misfire_policy_after_three_hours_of_downtime(huey, misfire, max_catchup, expected):
    # Given a */15 schedule synced at 00:00:10 (next slot 00:15)
    s = scheduler(huey, definition(misfire=misfire, max_catchup=max_catchup))
    s.sync(ts())
    # When the scheduler comes back at 03:07, after 12 missed slots (00:15 ... 03:00)
    s.tick(ts(timedelta(hours=3, minutes=7)))
    # Then the policy decides how many run, the latest ones, and the schedule moves on
    assert len(jobs_of(huey, "quarter_hourly")) == expected
    if expected:
        assert slots_of(huey, "quarter_hourly")[-1] == T0.replace(hour=3, second=0)
    row = get_schedule("quarter_hourly", huey=huey)
    assert row.next_fire_at == T0.replace(hour=3, minute=15, second=0).timestamp()
    assert row.skipped == 12 - expected


@pytest.mark.parametrize(("misfire", "ran"), [("skip", 0), ("once", 1)])
def test_missed_slots_the_misfire_policy_drops_are_logged(huey, caplog, misfire, ran):
    s = scheduler(huey, definition(misfire=misfire))
    s.sync(ts())
    with caplog.at_level(logging.WARNING, logger="runner.scheduling.scheduler"):
        s.tick(ts(timedelta(hours=3, minutes=7)))  # 12 slots missed (00:15 ... 03:00)
    [line] = [r.getMessage() for r in caplog.records if "missed" in r.getMessage()]
    assert line == (f"schedule 'quarter_hourly': {12 - ran} of 12 missed slot(s) since "
                    f"2025-01-06T00:15:00+00:00 dropped by misfire '{misfire}'; {ran} run(s) "
                    "enqueued")


def test_grace_lets_a_late_slot_run_under_skip(huey):
    s = scheduler(huey, definition(misfire="skip", grace=30))
    s.sync(ts())
    s.tick(ts(timedelta(minutes=14, seconds=70)))  # 20 s late for the 00:15 slot
    assert len(jobs_of(huey, "quarter_hourly")) == 1


def test_three_schedulers_fire_each_slot_exactly_once_over_a_day(huey):
    # Given three schedulers on one database with skewed clocks
    defs = [definition(overlap="allow"), definition("every_second", cron="*/7 * * * *",
                                                    overlap="allow")]
    schedulers = [scheduler(huey, *defs) for _ in range(3)]
    skew = [0.0, 0.4, -0.3]
    for s, offset in zip(schedulers, skew, strict=True):
        s.sync(ts() + offset)  # all start; a later sync must not move the next slot
    rng = random.Random(7)
    # When each ticks at random moments over a simulated day
    now = ts()
    end = ts(timedelta(days=1))
    while now < end:
        now += rng.uniform(1, 90)
        order = list(range(3))
        rng.shuffle(order)
        for i in order:
            schedulers[i].tick(now + skew[i])
    # Then every slot of the day fired once, with one job each
    for name, per_day in (("quarter_hourly", 96), ("every_second", 24 * 9)):
        slots = slots_of(huey, name)
        assert len(slots) == len(set(slots)) == len(jobs_of(huey, name))
        assert len(slots) in (per_day, per_day + 1)  # +1: the slot at the end of the window
        assert slots[0] == T0.replace(minute=15 if name == "quarter_hourly" else 7, second=0)


def test_restart_inside_the_firing_second_does_not_fire_again(huey):
    slot = T0.replace(minute=15, second=0)
    first = scheduler(huey)
    first.sync(ts())
    first.tick(slot.timestamp() + 0.2)
    assert len(jobs_of(huey, "quarter_hourly")) == 1
    # A new process starts in the same second: it syncs and ticks again.
    second = scheduler(huey)
    second.sync(slot.timestamp() + 0.6)
    second.tick(slot.timestamp() + 0.6)
    second.tick(slot.timestamp() + 0.99)
    assert len(jobs_of(huey, "quarter_hourly")) == 1


def test_clock_jumping_backwards_never_fires_a_slot_again(huey):
    slot = T0.replace(minute=15, second=0).timestamp()
    s = scheduler(huey, definition(overlap="allow"))
    s.sync(ts())
    s.tick(slot + 0.1)
    for back in (slot - 1, slot - 3600, slot + 0.5, slot + 899):
        s.tick(back)
    assert len(jobs_of(huey, "quarter_hourly")) == 1
    s.tick(slot + 900)
    assert len(jobs_of(huey, "quarter_hourly")) == 2


def test_overlap_skip_when_a_run_outlasts_its_interval(huey):
    # Given a */15 schedule whose 00:15 run is still executing at 00:30
    s = scheduler(huey)
    s.sync(ts())
    slot = T0.replace(minute=15, second=0).timestamp()
    s.tick(slot)
    [claimed] = huey.jobs.claim_due(1)
    s.tick(slot + 900)
    # Then the 00:30 slot is skipped and the skip is recorded on the schedule
    assert len(jobs_of(huey, "quarter_hourly")) == 1
    row = get_schedule("quarter_hourly", huey=huey)
    assert row.skipped == 1 and "still running" in row.last_skip_reason
    assert schedule_runs("quarter_hourly", huey=huey)[-1].outcome.startswith("skipped: overlap")
    # When the long run finishes, the next slot runs again
    huey.jobs.ack_completed(claimed.id, claimed.attempt)
    huey.jobs.flush_acks()
    s.tick(slot + 1800)
    assert [state for _, state, _ in jobs_of(huey, "quarter_hourly")] == [
        "completed", "available"]
    assert get_schedule("quarter_hourly", huey=huey).last_outcome == "available"


def test_overlap_queue_one_keeps_at_most_one_waiting_and_allow_keeps_all(huey):
    s = scheduler(huey, definition(overlap="queue_one"),
                  definition("async_hourly", cron="*/15 * * * *", overlap="allow"))
    s.sync(ts())
    slot = T0.replace(minute=15, second=0).timestamp()
    s.tick(slot)
    huey.jobs.claim_due(1)  # one quarter_hourly or async_hourly job starts running
    for k in (1, 2, 3):
        s.tick(slot + 900 * k)
    waiting = [j for j in jobs_of(huey, "quarter_hourly") if j[1] == "available"]
    assert len(waiting) == 1
    assert len(jobs_of(huey, "async_hourly")) == 4


def test_skip_next_skips_one_slot_only(huey):
    s = scheduler(huey, definition(overlap="allow"))
    s.sync(ts())
    skip_next_run("quarter_hourly", huey=huey)
    slot = T0.replace(minute=15, second=0).timestamp()
    s.tick(slot)
    s.tick(slot + 900)
    assert [r.outcome for r in schedule_runs("quarter_hourly", huey=huey)] == [
        "skipped: skip-next requested", "enqueued"]
    assert not get_schedule("quarter_hourly", huey=huey).skip_next


def test_pause_survives_a_restart_and_resume_does_not_catch_up(huey):
    s = scheduler(huey)
    s.sync(ts())
    pause_schedule("quarter_hourly", huey=huey)
    restarted = scheduler(huey)
    restarted.sync(ts(timedelta(minutes=1)))
    restarted.tick(ts(timedelta(hours=2)))
    assert get_schedule("quarter_hourly", huey=huey).paused
    assert jobs_of(huey, "quarter_hourly") == []
    resume_schedule("quarter_hourly", huey=huey, now=ts(timedelta(hours=2)))
    row = get_schedule("quarter_hourly", huey=huey)
    assert (row.paused, row.next_fire_at) == (False, T0.replace(hour=2, minute=15,
                                                                 second=0).timestamp())
    restarted.tick(row.next_fire_at)
    assert len(jobs_of(huey, "quarter_hourly")) == 1


def test_run_now_adds_a_run_without_disturbing_the_next_fire(huey):
    s = scheduler(huey)
    s.sync(ts())
    before = get_schedule("quarter_hourly", huey=huey).next_fire_at
    job_id = run_schedule_now("quarter_hourly", huey=huey, now=ts(timedelta(minutes=1)))
    row = get_schedule("quarter_hourly", huey=huey)
    assert row.next_fire_at == before and row.last_job_id == job_id
    assert [r.manual for r in schedule_runs("quarter_hourly", huey=huey)] == [True]
    assert drain() == 1
    assert get_schedule("quarter_hourly", huey=huey).last_outcome == "completed"


def test_async_scheduled_task_runs_with_its_arguments_and_options(huey):
    s = scheduler(huey, definition("async_hourly"))
    s.sync(ts())
    s.tick(T0.replace(hour=1, minute=0, second=0).timestamp())
    [(job_id, _, _)] = jobs_of(huey, "async_hourly")
    assert drain() == 1
    assert huey.result(job_id) == 42
    (attempts,) = huey.jobs.db.query("SELECT max_attempts FROM runner_job WHERE id=?",
                                     (job_id,))[0]
    assert attempts == 1  # retry_limit=0 from the decorator


def test_jitter_delays_the_run_but_the_slot_record_keeps_the_planned_slot(huey):
    s = scheduler(huey, definition(jitter=30))
    s.sync(ts())
    slot = T0.replace(minute=15, second=0).timestamp()
    s.tick(slot)
    [(_, state, run_at)] = jobs_of(huey, "quarter_hourly")
    assert slot <= run_at <= slot + 30
    assert schedule_runs("quarter_hourly", huey=huey)[0].slot == slot


def test_expression_change_recomputes_next_fire_and_removed_schedules_are_orphaned(huey):
    s = scheduler(huey, definition(), definition("async_hourly"))
    s.sync(ts())
    settings = replace(huey.settings, schedules={"quarter_hourly": ScheduleOverride(
        cron="0 6 * * *", timezone="Europe/Berlin")})
    changed = Scheduler(huey, settings, definitions=[definition()])
    changed.sync(ts(timedelta(minutes=1)))
    row = get_schedule("quarter_hourly", huey=huey)
    assert (row.expression, row.tz) == ("0 6 * * *", "Europe/Berlin")
    assert row.next_fire_at == T0.replace(hour=5, minute=0, second=0).timestamp()
    assert get_schedule("async_hourly", huey=huey).orphaned


def test_settings_can_disable_a_schedule(huey):
    settings = replace(huey.settings,
                       schedules={"quarter_hourly": ScheduleOverride(enabled=False)})
    s = Scheduler(huey, settings, definitions=[definition()])
    s.sync(ts())
    s.tick(ts(timedelta(hours=1)))
    assert jobs_of(huey, "quarter_hourly") == []
    assert not get_schedule("quarter_hourly", huey=huey).enabled


@pytest.mark.parametrize(("options", "reason"), [
    ({"cron": "61 * * * *"}, "invalid cron expression"),
    ({"cron": "* * *"}, "has 3 field(s)"),
    ({"cron": "*/0 * * * *"}, "invalid cron expression"),
    ({"cron": "0 0 31 2 *"}, "never fires"),
    ({"cron": "0 * * * *", "timezone": "Mars/Olympus"}, "unknown time zone"),
    ({"cron": "0 * * * *", "misfire": "sometimes"}, "misfire must be one of"),
    ({"cron": "0 * * * *", "overlap": "never"}, "overlap must be one of"),
    ({"cron": "0 * * * *", "jitter": -1}, "jitter must be a number"),
    ({"cron": None}, "cron expression must be a string"),
    ({"cron": ["0", "*", "*", "*", "*"]}, "cron expression must be a string"),
    ({"cron": 15}, "cron expression must be a string"),
    ({"cron": "0 * * * *", "args": (7)}, "args must be a list or tuple"),
    ({"cron": "0 * * * *", "args": "ab"}, "args must be a list or tuple"),
    ({"cron": "0 * * * *", "kwargs": [("deep", True), 1]}, "kwargs must be a dict"),
])
def test_decorator_rejects_bad_schedules_naming_them(options, reason):
    with pytest.raises(InvalidSchedule) as info:
        scheduled_task(name="broken_schedule", **options)(lambda: None)
    assert "'broken_schedule'" in str(info.value) and reason in str(info.value)
    assert registry.get("broken_schedule") is None


@pytest.mark.parametrize(("key", "value"), [
    ("grace", float("inf")), ("grace", float("nan")),
    ("jitter", float("inf")), ("jitter", float("nan")),
])
def test_grace_or_jitter_that_is_not_finite_is_rejected_in_code_and_settings(huey, key, value):
    # A NaN jitter made the firing transaction fail (no schedule fired at all), an
    # infinite one queued a run that never starts, and a NaN or infinite grace under
    # misfire="skip" never fired the schedule.
    with pytest.raises(InvalidSchedule, match=rf"'broken_schedule': {key} must be a finite "):
        scheduled_task(name="broken_schedule", cron="0 * * * *", misfire="skip",
                       **{key: value})(lambda: None)
    assert registry.get("broken_schedule") is None
    import tomllib

    table = tomllib.loads(f"[schedules.quarter_hourly]\n{key} = {value}")
    with pytest.raises(ConfigError, match=rf"\[schedules.quarter_hourly\] {key}: .*finite"):
        Scheduler(huey, parse_settings(table, source="s.toml"), definitions=[definition()])


def test_an_empty_time_zone_is_rejected_not_read_as_utc(huey):
    # timezone="" used to mean UTC silently, even with [runner] timezone set elsewhere
    with pytest.raises(InvalidSchedule, match="'broken_schedule': unknown time zone ''"):
        scheduled_task(name="broken_schedule", cron="0 * * * *", timezone="")(lambda: None)
    assert registry.get("broken_schedule") is None
    settings = parse_settings({"runner": {"timezone": "Europe/Berlin"},
                               "schedules": {"quarter_hourly": {"timezone": ""}}})
    with pytest.raises(InvalidSchedule, match="'quarter_hourly': unknown time zone ''"):
        Scheduler(huey, settings, definitions=[definition()])


def test_bad_schedule_settings_are_rejected_naming_the_schedule_and_key(huey):
    def settings(table: str):
        import tomllib

        return parse_settings(tomllib.loads(table), source="s.toml")

    with pytest.raises(InvalidSchedule, match="'quarter_hourly'.*never fires"):
        Scheduler(huey, settings('[schedules.quarter_hourly]\ncron = "0 0 30 2 *"'),
                  definitions=[definition()])
    # The code's own definition is valid: the error says the settings file broke it
    with pytest.raises(InvalidSchedule, match=r"^s.toml: \[schedules.quarter_hourly\] "
                       r"timezone: schedule 'quarter_hourly': unknown time zone 'Mars/Base'"):
        Scheduler(huey, settings('[schedules.quarter_hourly]\ntimezone = "Mars/Base"'),
                  definitions=[definition()])
    with pytest.raises(ConfigError, match=r"\[schedules.quarter_hourly\]: unknown key 'crom'"):
        Scheduler(huey, settings('[schedules.quarter_hourly]\ncrom = "0 * * * *"'),
                  definitions=[definition()])
    with pytest.raises(ConfigError, match=r"\[schedules.nope\] names no schedule"):
        Scheduler(huey, settings('[schedules.nope]\nenabled = false'),
                  definitions=[definition()])


def test_slots_planned_ahead_fire_with_the_prepared_job_only_once(huey):
    s = scheduler(huey, definition(overlap="allow"))
    other = scheduler(huey, definition(overlap="allow"))
    s.sync(ts())
    slot = T0.replace(minute=15, second=0).timestamp()
    s.prepare(slot)
    other.prepare(slot)
    prepared = s._ready["quarter_hourly"][2].id
    s.tick(slot + 0.01)
    other.tick(slot + 0.02)  # planned the same slot ahead, but loses the compare-and-set
    assert [j[0] for j in jobs_of(huey, "quarter_hourly")] == [prepared]
    assert get_schedule("quarter_hourly", huey=huey).next_fire_at == slot + 900


def test_schedule_arguments_json_cannot_carry_are_refused_at_start(huey):
    settings = parse_settings({"runner": {"serializer": "json"}})
    bad = definition(args=({1, 2},))
    with pytest.raises(InvalidSchedule, match=r"schedule 'quarter_hourly': .*serializer = "
                                              r"\"json\".*JSON cannot carry set"):
        Scheduler(huey, settings, definitions=[bad])
    assert Scheduler(huey, parse_settings({}), definitions=[bad]).schedules  # pickle carries it
    Scheduler(huey, settings, definitions=[definition(args=("plain",))])


def test_a_schedule_whose_runs_are_over_max_payload_mb_is_refused_at_start(huey):
    # Given arguments of 2 MiB and a bound of 1 MiB: every run would be a job over it
    bound = parse_settings({"worker": {"max_payload_mb": 1}})
    big = definition(args=("x" * 2 * 1024 * 1024,))
    with pytest.raises(InvalidSchedule, match=r"^schedule 'quarter_hourly': payload of \d+ "
                                              r"bytes \(2\.0 MiB\) is over \[worker\] "
                                              r"max_payload_mb = 1; pass a reference"):
        Scheduler(huey, bound, definitions=[big])
    # Under the default bound (16 MiB), or none, it is accepted
    assert Scheduler(huey, parse_settings({}), definitions=[big]).schedules
    assert Scheduler(huey, parse_settings({"worker": {"max_payload_mb": 0}}),
                     definitions=[big]).schedules
    Scheduler(huey, bound, definitions=[definition(args=("plain",))])


def test_a_schedule_whose_arguments_its_function_cannot_take_is_refused_at_start(huey):
    with pytest.raises(InvalidSchedule, match=r"^schedule 'quarter_hourly': task "
                                              r"'quarter_hourly': quarter_hourly\(label.* "
                                              r"cannot take this call: too many"):
        Scheduler(huey, parse_settings({}), definitions=[definition(args=("a", "b"))])


def test_a_unique_scheduled_task_dedupes_calls_and_skips_a_slot_while_its_key_is_held(huey):
    from tests.sched_jobs import unique_nightly

    manual = unique_nightly()
    assert unique_nightly().id == manual.id  # a second call writes nothing
    s = scheduler(huey, definition("unique_nightly"))
    s.sync(ts())
    s.tick(T0.replace(hour=3, minute=0, second=0).timestamp())
    assert [j[0] for j in jobs_of(huey, "unique_nightly")] == []  # the manual run holds it
    assert huey.jobs.store.count_jobs() == 1
    assert schedule_runs("unique_nightly", huey=huey)[-1].outcome == (
        f"skipped: unique: job {manual.id} holds its key")


def test_a_queue_one_schedule_runs_one_job_at_a_time_as_its_settings_say():
    from runner.runner_huey import RunnerHuey
    from runner.task import RunnerTaskWrapper

    # Given a task whose schedule queues one, and one whose schedule allows overlap
    huey = RunnerHuey("queue-one-limits")
    for name, overlap in (("queued", "queue_one"), ("allowed", "allow")):
        wrapper = RunnerTaskWrapper(huey, lambda: None, name=name, options={})
        wrapper.overlap = overlap

    def limits(table):
        return huey.task_registry.flow_limits(parse_settings(table)).task_concurrency

    # Then the claim holds the first to one running job, whatever [tasks.NAME] says, and
    # [schedules.NAME] overlap decides over the decorator
    assert limits({}) == {"queued": 1}
    assert limits({"tasks": {"queued": {"concurrency": 0}}}) == {"queued": 1}
    assert limits({"schedules": {"queued": {"overlap": "allow"},
                                 "allowed": {"overlap": "queue_one"}}}) == {"allowed": 1}
