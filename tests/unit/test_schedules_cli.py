"""``python -m runner schedules ...`` and ``python -m runner cron explain``."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from runner.cli import main
from runner.scheduling import cron, cron_times
from runner.store.sqlite.schedules import get_schedule, list_schedules, schedule_runs
from tests import sched_jobs  # noqa: F401 - registers the test schedules
from tests.conftest import write_settings


@pytest.fixture
def cli(huey, tmp_path):
    """Run a CLI command against the test database; returns (exit code, stdout)."""
    settings = write_settings(tmp_path, name="cli.toml")
    settings.write_text(settings.read_text().replace(
        'imports = ["tests.jobs"]', 'imports = ["tests.jobs", "tests.sched_jobs"]'))

    def run(*argv: str) -> int:
        return main(["--settings", str(settings), *argv])

    return run


def test_pause_resume_skip_next_and_run_now_from_the_command_line(cli, huey, capsys):
    db = huey.jobs.db
    assert cli("schedules", "pause", "quarter_hourly") == 0
    assert get_schedule(db, "quarter_hourly").paused
    assert cli("schedules", "skip-next", "quarter_hourly") == 0
    assert get_schedule(db, "quarter_hourly").skip_next
    assert cli("schedules", "resume", "quarter_hourly") == 0
    assert not get_schedule(db, "quarter_hourly").paused
    before = get_schedule(db, "quarter_hourly").next_fire_at
    assert cli("schedules", "run-now", "quarter_hourly") == 0
    row = get_schedule(db, "quarter_hourly")
    assert row.next_fire_at == before and row.last_job_id is not None
    assert [r.outcome for r in schedule_runs(db, "quarter_hourly")] == ["enqueued (run now)"]
    out = capsys.readouterr().out
    assert "pause: quarter_hourly" in out and f"enqueued job {row.last_job_id}" in out


def test_an_action_repeated_says_it_changed_nothing_more(cli, capsys):
    said = []
    for action in ("pause", "pause", "resume", "resume", "skip-next", "skip-next"):
        assert cli("schedules", action, "quarter_hourly") == 0
        said.append(capsys.readouterr().out.strip())
    assert said == [
        "pause: quarter_hourly", "pause: quarter_hourly was already paused",
        "resume: quarter_hourly", "resume: quarter_hourly was not paused",
        "skip-next: quarter_hourly",
        "skip-next: quarter_hourly already skips its next slot (one at a time)"]


def test_the_slot_skip_next_will_skip_is_marked_among_the_next_fire_times(cli, capsys):
    assert cli("schedules", "skip-next", "quarter_hourly") == 0
    capsys.readouterr()
    assert cli("schedules") == 0
    line = next(x for x in capsys.readouterr().out.splitlines()
                if x.startswith("quarter_hourly"))
    first, second, third = line.split("  UTC  ")[1].split(", ")[:3]
    assert first.endswith(":00 (skipped)") and "skipped" not in second + third, line
    assert cli("schedules", "show", "quarter_hourly") == 0
    out = capsys.readouterr().out
    assert "UTC (skipped), " in out and out.count("(skipped)") == 1, out


def test_schedules_lists_next_three_fire_times_last_run_and_state(cli, huey, capsys):
    cli("schedules", "pause", "every_second")
    cli("schedules", "run-now", "quarter_hourly")
    capsys.readouterr()
    assert cli("schedules") == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "paused" in lines["every_second"]
    quarter = lines["quarter_hourly"]
    assert "*/15 * * * *" in quarter and "active" in quarter and "available" in quarter
    assert quarter.count(":00:00") + quarter.count(":15:00") + quarter.count(":30:00") \
        + quarter.count(":45:00") == 3
    assert {r.name for r in list_schedules(huey.jobs.db)} == {"every_second", "quarter_hourly"}
    assert cli("schedules", "show", "quarter_hourly") == 0
    assert "enqueued (run now)" in capsys.readouterr().out


def test_run_now_of_a_unique_schedule_whose_run_waits_names_that_run(cli, huey, capsys):
    # Given a unique schedule run now: its run waits
    assert cli("schedules", "run-now", "unique_nightly") == 0
    first = get_schedule(huey.jobs.db, "unique_nightly").last_job_id
    capsys.readouterr()
    # When it is run now again
    assert cli("schedules", "run-now", "unique_nightly") == 0
    # Then the waiting run is named, a job that exists, and nothing more is enqueued
    out = capsys.readouterr().out
    assert out == f"run-now: unique_nightly: a run is already waiting: job {first}; " \
                  "nothing enqueued\n"
    assert cli("show", first) == 0
    assert [r.job_id for r in schedule_runs(huey.jobs.db, "unique_nightly")] == [first]


def test_schedules_show_gives_no_next_fire_for_a_schedule_that_does_not_fire(cli, huey,
                                                                              capsys):
    # Given a paused schedule, a disabled one and an orphaned one
    assert cli("schedules", "pause", "quarter_hourly") == 0
    assert cli("schedules", "resume", "every_second") == 0
    assert cli("schedules", "resume", "async_hourly") == 0
    huey.jobs.db.write(lambda conn: conn.execute(
        "UPDATE runner_schedule SET enabled = 0, next_fire_at = 1 WHERE name = 'every_second'"))
    huey.jobs.db.write(lambda conn: conn.execute(
        "UPDATE runner_schedule SET orphaned = 1 WHERE name = 'async_hourly'"))
    capsys.readouterr()
    # Then show, like the listing, gives no next fire time, and says why
    for name, why in (("quarter_hourly", "paused"), ("every_second", "disabled"),
                      ("async_hourly", "orphaned")):
        assert cli("schedules", "show", name) == 0
        out = capsys.readouterr().out
        assert f"next fire: - ({why})" in out, out


def test_unknown_schedule_is_an_error_naming_it(cli, capsys):
    assert cli("schedules", "pause", "no_such_schedule") == 65
    assert "no_such_schedule" in capsys.readouterr().err


def test_run_now_of_a_schedule_no_one_defines_says_so_as_the_other_actions_do(cli, huey,
                                                                              capsys):
    # Given a schedule in the database
    assert cli("schedules", "pause", "quarter_hourly") == 0
    capsys.readouterr()
    # When a name neither the code nor the database knows is run now or paused
    assert cli("schedules", "run-now", "no_such_schedule") == 65
    run_now = capsys.readouterr().err
    assert cli("schedules", "pause", "no_such_schedule") == 65
    # Then both say the same
    assert run_now == capsys.readouterr().err
    assert "no schedule named 'no_such_schedule' (known: quarter_hourly)" in run_now
    # and a schedule the database holds but this process does not define asks for its module
    huey.jobs.db.write(lambda conn: conn.execute(
        "UPDATE runner_schedule SET name = 'elsewhere' WHERE name = 'quarter_hourly'"))
    assert cli("schedules", "run-now", "elsewhere") == 65
    assert "not defined in this process; import the module" in capsys.readouterr().err


def test_cron_explain_prints_fire_times_like_systemd(cli, capsys):
    assert cli("cron", "explain", "30 2 * * *", "--tz", "Europe/Berlin", "-n", "3") == 0
    out = capsys.readouterr().out
    assert "Original form: 30 2 * * *" in out and "Time zone: Europe/Berlin" in out
    assert out.count("02:30:00 CE") == 3 and "Iteration #3" in out


@pytest.mark.parametrize("count", ["0", "-3"])
def test_cron_explain_refuses_a_count_below_one_instead_of_saying_never(cli, capsys, count):
    assert cli("cron", "explain", "30 2 * * *", "-n", count) == 65
    captured = capsys.readouterr()
    assert "never" not in captured.out
    assert f"-n/--iterations {count}: expected at least 1" in captured.err


def test_cron_explain_rejects_an_expression_that_never_fires(cli, capsys):
    assert cli("cron", "explain", "0 0 31 2 *") == 65  # bad input, as for every command
    assert "never fires" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["61 * * * *"], "invalid cron expression '61 * * * *': minute 61 is out of range 0-59"),
    (["0 9 * * *", "--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
])
def test_cron_explain_exits_65_naming_what_is_wrong_with_its_input(cli, capsys, argv, message):
    assert cli("cron", "explain", *argv) == 65
    assert message in capsys.readouterr().err


def test_cron_explain_of_a_hashed_expression_takes_the_schedule_name_it_asks_for(cli, capsys):
    # Without a name the error asks for one; --name gives the times that schedule gets
    assert cli("cron", "explain", "H 3 * * *") == 65
    assert "--name" in capsys.readouterr().err
    assert cli("cron", "explain", "H 3 * * *", "--name", "nightly_report", "-n", "2") == 0
    out = capsys.readouterr().out
    spec = cron.parse("H 3 * * *", name="nightly_report")
    minute = cron_times.next_fire(spec, datetime(2025, 1, 1, tzinfo=UTC)).minute
    assert "Hash key: nightly_report" in out and "Iteration #2" in out
    assert out.count(f"03:{minute:02d}:00 UTC") == 4  # each time, then again "in UTC"


def test_cron_explain_reads_the_expression_in_the_settings_zone_or_the_named_schedules(
        cli, tmp_path, capsys):
    # Given settings whose [runner] timezone is Tokyo
    tokyo = write_settings(tmp_path, name="tokyo.toml")
    tokyo.write_text(tokyo.read_text().replace(
        'imports = ["tests.jobs"]',
        'imports = ["tests.jobs", "tests.sched_jobs"]\ntimezone = "Asia/Tokyo"'))
    # Then an expression is explained in that zone, unless --tz names another
    assert main(["--settings", str(tokyo), "cron", "explain", "0 9 * * *"]) == 0
    out = capsys.readouterr().out
    assert "Time zone: Asia/Tokyo" in out and "09:00:00 JST" in out
    assert main(["--settings", str(tokyo), "cron", "explain", "0 9 * * *", "--tz",
                 "Europe/Berlin"]) == 0
    assert "Time zone: Europe/Berlin" in capsys.readouterr().out
    # and --name reads it in that schedule's zone (tokyo_morning is Tokyo's, in UTC settings)
    assert cli("cron", "explain", "30 9 * * *", "--name", "tokyo_morning") == 0
    assert "Time zone: Asia/Tokyo" in capsys.readouterr().out
    assert cli("cron", "explain", "30 9 * * *", "--name", "not_a_schedule") == 0
    assert "Time zone: UTC" in capsys.readouterr().out


@pytest.fixture
def new_york(monkeypatch):
    """The process's local zone is New York, far from the schedule's."""
    import time

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_schedules_show_gives_every_time_in_the_schedules_zone_labelled(cli, huey, capsys,
                                                                        new_york):
    import re
    from zoneinfo import ZoneInfo

    # Given a schedule of Tokyo that has run, read from a terminal in New York
    assert cli("schedules", "run-now", "tokyo_morning") == 0
    capsys.readouterr()
    # When it is shown
    assert cli("schedules", "show", "tokyo_morning") == 0
    out = capsys.readouterr().out
    # Then every time printed is Tokyo time and says so
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Z]+)?", out)
    assert len(stamps) >= 6, out  # 3 next fires, last fired, the run's slot and fire time
    assert all(s.endswith(" JST") for s in stamps), out
    assert out.count("09:30:00 JST") == 3
    fired = get_schedule(huey.jobs.db, "tokyo_morning").last_fired_at
    tokyo = datetime.fromtimestamp(fired, ZoneInfo("Asia/Tokyo"))
    assert f"last fired: {tokyo:%Y-%m-%d %H:%M:%S} JST" in out


def test_a_schedule_no_scheduler_fired_reads_as_late(cli, huey, capsys):
    # Given a schedule whose due slot passed 40 minutes ago with no scheduler running
    cli("schedules", "pause", "every_second")
    cli("schedules", "pause", "quarter_hourly")
    cli("schedules", "resume", "quarter_hourly")
    huey.jobs.db.write(lambda conn: conn.execute(
        "UPDATE runner_schedule SET next_fire_at = ? WHERE name = 'quarter_hourly'",
        (time.time() - 2400,)))
    capsys.readouterr()
    # When the schedules are listed
    assert cli("schedules") == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    # Then its lag says how late the due fire is, as the dashboard does
    assert "quarter_hourly" in lines, out
    assert "40m" in lines["quarter_hourly"] and "late" in lines["quarter_hourly"], out
    assert "late" not in lines["every_second"], out


def test_a_schedule_whose_last_slot_was_skipped_says_so(cli, huey, capsys):
    # Given a schedule that ran its 00:15 slot, then was told to skip the next one
    from runner.scheduling.control import skip_next_run
    from runner.scheduling.definitions import registry
    from runner.scheduling.scheduler import Scheduler
    from runner.store.rows import short_id

    cli("schedules", "pause", "every_second")
    start = datetime(2025, 1, 6, 0, 0, 10, tzinfo=UTC).timestamp()
    scheduler = Scheduler(huey, huey.settings, definitions=[registry.get("quarter_hourly")])
    scheduler.sync(start)
    scheduler.tick(start + 890)
    skip_next_run("quarter_hourly", huey=huey)
    scheduler.tick(start + 1790)
    capsys.readouterr()
    # When the schedules are listed and the schedule shown
    assert cli("schedules") == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("quarter_hourly"))
    # Then the last fire's outcome is the skip, not the earlier run's job
    assert "skipped: skip-next requested" in line and "available" not in line, out
    assert cli("schedules", "show", "quarter_hourly") == 0
    out = capsys.readouterr().out
    # and the slot that ran names its job by the short id the jobs listing prints
    job = get_schedule(huey.jobs.db, "quarter_hourly").last_job_id
    assert short_id(job) in out and f" {job[:8]} " not in out, out
