"""Tests for runner.scheduling.cron, cron_times, misfire and cron_text: parsing, fire times
across DST, misfire plans, explain text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from runner.errors import EX_CONFIG, ConfigError, InvalidSchedule
from runner.scheduling.cron import CronSpec, parse
from runner.scheduling.cron_text import explain
from runner.scheduling.cron_times import fire_times, next_fire, slots_between
from runner.scheduling.misfire import POLICIES, plan_misfire

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)


def day_window(zone: ZoneInfo, year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """The real instants of one local calendar day, as (exclusive start, inclusive end)."""
    start = local(zone, year, month, day) - timedelta(microseconds=1)
    end = local(zone, year, month, day) + timedelta(days=1) - timedelta(microseconds=1)
    return start.astimezone(UTC), end.astimezone(UTC)


# --- field forms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        (
            "*/15 * * * *",
            utc(2026, 1, 1, 10, 7),
            [utc(2026, 1, 1, 10, 15), utc(2026, 1, 1, 10, 30)],
        ),
        (
            "10-20/5 8-17/3 * * *",
            utc(2026, 1, 1),
            [utc(2026, 1, 1, 8, 10), utc(2026, 1, 1, 8, 15), utc(2026, 1, 1, 8, 20)],
        ),
        ("0 12 * jan,jul mon-fri", utc(2026, 1, 31), [utc(2026, 7, 1, 12), utc(2026, 7, 2, 12)]),
        ("0 12 1 JAN,JUL *", utc(2026, 1, 31), [utc(2026, 7, 1, 12), utc(2027, 1, 1, 12)]),
        ("0 0 L 2 *", utc(2028, 1, 1), [utc(2028, 2, 29), utc(2029, 2, 28)]),
        ("0 9 15W * *", utc(2026, 8, 1), [utc(2026, 8, 14, 9), utc(2026, 9, 15, 9)]),
        ("0 9 * * 1#1", utc(2026, 1, 1), [utc(2026, 1, 5, 9), utc(2026, 2, 2, 9)]),
        ("0 9 * * L5", utc(2026, 1, 1), [utc(2026, 1, 30, 9), utc(2026, 2, 27, 9)]),
        ("0 0 29 2 *", utc(2026, 1, 1), [utc(2028, 2, 29), utc(2032, 2, 29)]),
    ],
)
def test_five_field_forms_fire_at_expected_times(
    expr: str, after: datetime, expected: list[datetime]
) -> None:
    spec = parse(expr)
    assert not spec.has_seconds
    assert fire_times(spec, after, len(expected)) == expected


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        (
            "*/5 * * * * *",
            utc(2026, 1, 1, 10, 0, 2),
            [utc(2026, 1, 1, 10, 0, 5), utc(2026, 1, 1, 10, 0, 10)],
        ),
        ("30 0 9 * * *", utc(2026, 1, 1), [utc(2026, 1, 1, 9, 0, 30), utc(2026, 1, 2, 9, 0, 30)]),
    ],
)
def test_six_fields_read_the_leading_field_as_seconds(
    expr: str, after: datetime, expected: list[datetime]
) -> None:
    spec = parse(expr)
    assert spec.has_seconds
    assert fire_times(spec, after, 2) == expected


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("@hourly", utc(2026, 1, 1, 1)),
        ("@daily", utc(2026, 1, 2)),
        ("@midnight", utc(2026, 1, 2)),
        ("@weekly", utc(2026, 1, 4)),
        ("@monthly", utc(2026, 2, 1)),
        ("@yearly", utc(2027, 1, 1)),
        ("@annually", utc(2027, 1, 1)),
        ("@DAILY", utc(2026, 1, 2)),
    ],
)
def test_aliases_fire_at_fixed_times_even_with_a_hash_key(alias: str, expected: datetime) -> None:
    spec = parse(alias, name="nightly", hash_key="nightly")
    assert next_fire(spec, utc(2026, 1, 1)) == expected


def test_hashed_fields_are_stable_per_key_and_spread_across_keys() -> None:
    # Given the same H expression parsed twice per key, for several keys
    after = utc(2026, 1, 1)
    keys = ["cleanup", "report", "sync", "backup"]
    firsts = [next_fire(parse("H H * * *", hash_key=key), after) for key in keys]
    # Then each key gives the same time every time, and the keys do not all collide
    assert firsts == [next_fire(parse("H H * * *", hash_key=key), after) for key in keys]
    assert len(set(firsts)) > 1
    # And the schedule name is the default key
    assert next_fire(parse("H H * * *", name="cleanup"), after) == firsts[0]


def test_hashed_step_keeps_its_interval() -> None:
    times = fire_times(parse("H/15 * * * *", name="poll"), utc(2026, 1, 1), 4)
    assert {b - a for a, b in zip(times, times[1:], strict=False)} == {timedelta(minutes=15)}


# --- time zones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        ("UTC", utc(2026, 1, 15), utc(2026, 1, 15, 9)),
        ("Europe/Berlin", utc(2026, 1, 15), utc(2026, 1, 15, 8)),
        ("Europe/Berlin", utc(2026, 7, 15), utc(2026, 7, 15, 7)),
        ("America/New_York", utc(2026, 1, 15), utc(2026, 1, 15, 14)),
    ],
)
def test_expression_is_read_in_its_time_zone(tz: str, after: datetime, expected: datetime) -> None:
    assert next_fire(parse("0 9 * * *", tz=tz), after) == expected


def test_after_may_be_in_any_zone_and_result_is_utc() -> None:
    spec = parse("0 9 * * *", tz="Europe/Berlin")
    fired = next_fire(spec, local(NEW_YORK, 2026, 1, 15, 0))  # 05:00 UTC
    assert fired == utc(2026, 1, 15, 8)
    assert fired.tzinfo is UTC


def test_naive_after_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire(parse("* * * * *"), datetime(2026, 1, 1))


# --- DST ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "day", "expected"),
    [
        ("Europe/Berlin", (2026, 3, 29), utc(2026, 3, 29, 1)),  # 03:00 CEST
        ("America/New_York", (2026, 3, 8), utc(2026, 3, 8, 7)),  # 03:00 EDT
    ],
)
def test_spring_forward_daily_0230_fires_once_at_0300(
    tz: str, day: tuple[int, int, int], expected: datetime
) -> None:
    spec = parse("30 2 * * *", tz=tz)
    start, end = day_window(spec.zone, *day)
    assert slots_between(spec, start, end, 10) == [expected]


@pytest.mark.parametrize(
    ("tz", "expr", "day", "expected"),
    [
        ("Europe/Berlin", "30 2 * * *", (2026, 10, 25), utc(2026, 10, 25, 0, 30)),  # CEST
        ("America/New_York", "30 1 * * *", (2026, 11, 1), utc(2026, 11, 1, 5, 30)),  # EDT
    ],
)
def test_fall_back_daily_repeated_time_fires_once_at_first_occurrence(
    tz: str, expr: str, day: tuple[int, int, int], expected: datetime
) -> None:
    spec = parse(expr, tz=tz)
    start, end = day_window(spec.zone, *day)
    assert slots_between(spec, start, end, 10) == [expected]


def test_fall_back_hourly_fires_at_both_0200_cest_and_0200_cet() -> None:
    spec = parse("0 * * * *", tz="Europe/Berlin")
    first = local(BERLIN, 2026, 10, 25, 2)
    second = local(BERLIN, 2026, 10, 25, 2, fold=1)
    assert fire_times(spec, first - timedelta(hours=1), 3) == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 2),
    ]
    # After the first 02:00 (CEST), the next fire is the second 02:00 (CET), one real hour on.
    assert next_fire(spec, first) == second.astimezone(UTC)


@pytest.mark.parametrize(
    ("tz", "day", "count"),
    [
        ("Europe/Berlin", (2026, 3, 29), 23),
        ("Europe/Berlin", (2026, 10, 25), 25),
        ("America/New_York", (2026, 3, 8), 23),
        ("America/New_York", (2026, 11, 1), 25),
        ("Europe/Berlin", (2026, 6, 1), 24),
    ],
)
def test_hourly_fires_once_per_real_hour_of_the_local_day(
    tz: str, day: tuple[int, int, int], count: int
) -> None:
    spec = parse("0 * * * *", tz=tz)
    start, end = day_window(spec.zone, *day)
    assert len(slots_between(spec, start, end, 100)) == count


TRANSITIONS = [
    pytest.param("Europe/Berlin", utc(2026, 3, 29, 1), id="berlin-spring"),
    pytest.param("Europe/Berlin", utc(2026, 10, 25, 1), id="berlin-fall"),
    pytest.param("America/New_York", utc(2026, 3, 8, 7), id="new-york-spring"),
    pytest.param("America/New_York", utc(2026, 11, 1, 6), id="new-york-fall"),
]


@pytest.mark.parametrize(("tz", "transition"), TRANSITIONS)
@pytest.mark.parametrize(
    ("expr", "count"),
    [("30 2 * * *", 2), ("30 1 * * *", 2), ("0 * * * *", 48), ("*/15 * * * *", 192)],
)
def test_48_hours_around_a_transition_skip_nothing_and_double_nothing(
    tz: str, transition: datetime, expr: str, count: int
) -> None:
    # Given 48 real hours around a DST transition (from 12 hours before it)
    spec = parse(expr, tz=tz)
    start, end = transition - timedelta(hours=12), transition + timedelta(hours=36)
    # When listing the slots in it
    slots = slots_between(spec, start, end, 1000)
    # Then daily schedules fire once per day, hourly ones once per real hour, none twice
    assert len(slots) == len(set(slots)) == count
    assert slots == sorted(slots)
    if spec.every_hour:
        gaps = {b - a for a, b in zip(slots, slots[1:], strict=False)}
        assert gaps == {timedelta(hours=48) / count}


def test_every_second_schedule_runs_through_the_fall_back_hour_every_real_second() -> None:
    spec = parse("* * * * * *", tz="Europe/Berlin")
    after = utc(2026, 10, 25, 0, 59, 58)  # 02:59:58 CEST, just before the clocks go back
    assert fire_times(spec, after, 3) == [
        utc(2026, 10, 25, 0, 59, 59),
        utc(2026, 10, 25, 1, 0, 0),  # 02:00:00 CET, the repeated hour
        utc(2026, 10, 25, 1, 0, 1),
    ]


# --- strictness and order -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "tz", "after"),
    [
        ("*/15 * * * *", "UTC", utc(2026, 1, 1, 10, 15)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30)),
        ("0 * * * *", "Europe/Berlin", utc(2026, 10, 25, 1)),
        ("30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 1)),
        ("*/5 * * * * *", "UTC", utc(2026, 1, 1, 0, 0, 5)),
    ],
)
def test_next_fire_is_strictly_after_a_slot_it_lands_on(
    expr: str, tz: str, after: datetime
) -> None:
    spec = parse(expr, tz=tz)
    fired = next_fire(spec, after)
    assert fired > after
    assert next_fire(spec, after - timedelta(microseconds=1)) == after


@pytest.mark.parametrize("expr", ["*/7 * * * *", "0 */2 * * *", "30 1,2 * * *", "0 0 * * 1#5"])
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
def test_fire_times_are_strictly_increasing(expr: str, tz: str) -> None:
    times = fire_times(parse(expr, tz=tz), utc(2026, 10, 20), 60)
    assert len(times) == 60
    assert all(a < b for a, b in zip(times, times[1:], strict=False))


def test_slots_between_returns_the_earliest_up_to_limit() -> None:
    spec = parse("*/15 * * * *")
    start, end = utc(2026, 1, 1, 9), utc(2026, 1, 1, 12)
    assert slots_between(spec, start, end, 2) == [utc(2026, 1, 1, 9, 15), utc(2026, 1, 1, 9, 30)]
    assert slots_between(spec, start, end, 100)[-1] == end
    assert slots_between(spec, end, end, 100) == []


# --- misfire ------------------------------------------------------------------------------


def missed_after_downtime() -> tuple[list[datetime], datetime]:
    """A */15 schedule whose last run was 09:00, back up at 12:05: 12 slots missed."""
    missed = slots_between(parse("*/15 * * * *"), utc(2026, 1, 1, 9), utc(2026, 1, 1, 12, 5), 100)
    assert len(missed) == 12
    return missed, utc(2026, 1, 1, 12, 5)


@pytest.mark.parametrize(
    ("policy", "max_catchup", "runs"),
    [("skip", 100, 0), ("once", 100, 1), ("all", 100, 12), ("all", 5, 5), ("all", 0, 0)],
)
def test_misfire_policy_after_three_hours_down(policy: str, max_catchup: int, runs: int) -> None:
    missed, now = missed_after_downtime()
    plan = plan_misfire(policy, missed, now, grace=60, max_catchup=max_catchup)
    assert len(plan) == runs
    assert plan == missed[len(missed) - runs :]  # always the most recent, oldest first


@pytest.mark.parametrize("max_catchup", [12, 13, 20, 23, 24, 100])
def test_misfire_all_runs_every_missed_slot_when_the_cap_is_not_reached(max_catchup: int) -> None:
    # 12 missed slots under a cap of 20 ran only the last 8 (12 - 20 = -8 taken as a start)
    missed, now = missed_after_downtime()
    assert plan_misfire("all", missed, now, grace=60, max_catchup=max_catchup) == missed


def test_misfire_skip_still_runs_a_slot_within_grace() -> None:
    missed, now = missed_after_downtime()
    assert plan_misfire("skip", missed, now, grace=300, max_catchup=1) == [utc(2026, 1, 1, 12)]


def test_misfire_ignores_future_and_duplicate_slots() -> None:
    missed, now = missed_after_downtime()
    slots = [*reversed(missed), missed[-1], now + timedelta(minutes=10)]
    assert plan_misfire("all", slots, now, grace=0, max_catchup=100) == missed


@pytest.mark.parametrize(
    ("policy", "grace", "max_catchup", "match"),
    [
        ("sometimes", 0, 1, "unknown misfire policy 'sometimes'"),
        ("all", -1, 1, "grace"),
        ("all", 0, -1, "max_catchup"),
    ],
)
def test_misfire_rejects_bad_options(
    policy: str, grace: float, max_catchup: int, match: str
) -> None:
    with pytest.raises(InvalidSchedule, match=match):
        plan_misfire(policy, [], utc(2026, 1, 1), grace=grace, max_catchup=max_catchup, name="x")
    assert POLICIES == ("skip", "once", "all")


# --- invalid input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("* * *", "3 field"),
        ("0 0 * * * * *", "7 field"),
        ("60 * * * *", "out of range"),
        ("* * * * * 60", "out of range"),
        ("*/0 * * * *", "step"),
        ("0 0 31 2 *", "never fires"),
        ("0 0 30 2 *", "never fires"),
        ("0 0 31 4,6,9,11 *", "never fires"),
        ("bogus", "1 field"),
        ("@fortnightly", "unknown cron alias"),
        ("R * * * *", "random"),
        ("0 0 * * 1#6", "not acceptable"),
    ],
)
def test_malformed_expressions_are_rejected_naming_the_schedule(expr: str, reason: str) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse(expr, name="daily_cleanup")
    message = str(caught.value)
    assert message.startswith("schedule 'daily_cleanup': ")
    assert repr(expr) in message
    assert reason in message
    assert isinstance(caught.value, ConfigError)
    assert caught.value.exit_code == EX_CONFIG


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("61 * * * *", "minute 61 is out of range 0-59"),
        ("0 25 * * *", "hour 25 is out of range 0-23"),
        ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
        ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
        ("0 0 * 13 *", "month 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
        ("61 * * * * *", "second 61 is out of range 0-59"),
        ("0 5-70 * * * *", "minute 70 is out of range 0-59"),
        ("0 1,99 * * *", "hour 99 is out of range 0-23"),
        ("0 H(0-30) * * *", "hour 30 is out of range 0-23"),
    ],
)
def test_a_value_out_of_range_is_named_by_its_field_and_the_fields_range(
    expr: str, reason: str
) -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse(expr, name="daily_cleanup")
    assert str(caught.value) == (
        f"schedule 'daily_cleanup': invalid cron expression {expr!r}: {reason}"
    )


@pytest.mark.parametrize("expr", [None, 5, b"* * * * *", ["0", "*", "*", "*", "*"]])
def test_an_expression_that_is_not_text_is_rejected_naming_the_schedule(expr: object) -> None:
    with pytest.raises(InvalidSchedule, match=r"^schedule 'daily_cleanup': cron expression must "
                                              r"be a string"):
        parse(expr, name="daily_cleanup")  # type: ignore[arg-type]


def test_never_firing_expression_message() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        parse("0 0 31 2 *", name="daily_cleanup")
    assert str(caught.value) == "schedule 'daily_cleanup': cron expression '0 0 31 2 *' never fires"


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "Europe", "../etc/passwd", "utc"])
def test_unknown_time_zone_is_rejected(tz: str) -> None:
    with pytest.raises(InvalidSchedule, match=rf"^schedule 'n': unknown time zone {tz!r}"):
        parse("* * * * *", tz=tz, name="n")


def test_hashed_expression_without_key_is_rejected() -> None:
    with pytest.raises(InvalidSchedule, match="'H' needs a hash key"):
        parse("H * * * *")


def test_message_has_no_prefix_without_a_name() -> None:
    with pytest.raises(InvalidSchedule, match=r"^cron expression '\* \* \*' has 3 field"):
        parse("* * *")


# --- explain ------------------------------------------------------------------------------


def test_explain_prints_like_systemd_analyze_calendar() -> None:
    spec = parse("*/15 * * * *", tz="Europe/Berlin")
    text = explain(spec, utc(2026, 11, 29, 12, 11), 2)
    assert text == (
        "  Original form: */15 * * * *\n"
        "Normalized form: */15 * * * *\n"
        "      Time zone: Europe/Berlin\n"
        "    Next elapse: Sun 2026-11-29 13:15:00 CET\n"
        "       (in UTC): Sun 2026-11-29 12:15:00 UTC\n"
        "       From now: 4min 0s left\n"
        "   Iteration #2: Sun 2026-11-29 13:30:00 CET\n"
        "       (in UTC): Sun 2026-11-29 12:30:00 UTC\n"
        "       From now: 19min left"
    )


def test_explain_shows_alias_expansion_and_hash_key() -> None:
    text = explain(parse("H 3 * * *", name="backup"), utc(2026, 1, 1), 1)
    assert "Hash key: backup" in text
    assert "From now: " in text
    assert "Normalized form: 0 0 * * *" in explain(parse("@daily"), utc(2026, 1, 1))


def test_spec_is_a_frozen_value() -> None:
    spec = parse("0 9 * * *", tz="Europe/Berlin", name="a")
    assert isinstance(spec, CronSpec)
    assert spec == parse("0 9 * * *", tz="Europe/Berlin", name="a")
    with pytest.raises(AttributeError):
        spec.expr = "* * * * *"  # type: ignore[misc]
