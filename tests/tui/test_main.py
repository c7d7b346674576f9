"""Start-up errors read as one line, and a database that goes away comes back by itself."""

from __future__ import annotations

import sqlite3

import pytest
from textual.widgets import Static

from runner.config import DatabaseSection
from runner.errors import DatabaseLocked
from runner.store.sqlite.models import create_schema
from tests.conftest import in_checkout_beside_service, write_settings
from tests.tui.conftest import drive, wait_poll
from tui.__main__ import main, parse_args
from tui.app import make_app
from tui.source import DataSource


def test_missing_file_says_how_to_get_a_database(tmp_path, capsys):
    code = main(["--db", str(tmp_path / "nope.db")])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "nope.db: no such file" in err
    assert "start `python run.py` first, or pass `--db PATH`" in err
    assert "disk I/O" not in err


def test_an_empty_file_is_no_database_yet_and_is_left_empty(tmp_path, capsys):
    empty = tmp_path / "jobs.db"
    empty.touch()
    code = main(["--db", str(empty)])
    err = capsys.readouterr().err
    assert code == 73 and "Traceback" not in err
    assert f"{empty}: the file is empty: no jobs database yet" in err
    assert "start `python run.py` first" in err
    assert empty.stat().st_size == 0


def test_a_mistyped_directory_is_named(tmp_path, capsys):
    code = main(["--db", str(tmp_path / "typo" / "jobs.db")])
    err = capsys.readouterr().err
    assert code != 0 and "no such directory" in err and "python run.py" in err


def test_a_directory_is_not_a_database_and_the_file_inside_is_suggested(tmp_path, capsys):
    code = main(["--db", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "is a directory, not a jobs database" in err
    assert "disk I/O" not in err and "pass the database file with --db PATH" in err
    (tmp_path / "jobs.db").write_bytes(b"")
    main(["--db", str(tmp_path)])
    assert f"did you mean --db {tmp_path / 'jobs.db'}?" in capsys.readouterr().err


def test_a_file_that_is_not_a_jobs_database_is_refused(tmp_path, capsys):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not sqlite at all" * 100)
    assert main(["--db", str(other)]) == 65
    assert "not a jobs database" in capsys.readouterr().err
    assert main(["--db", str(garbage)]) == 65
    assert "not a database" in capsys.readouterr().err


def test_options_parse():
    args = parse_args(["--db", "x.db", "--read-only", "--refresh", "2.5", "--error-log", "e"])
    assert (args.db, args.read_only, args.refresh, args.settings, args.error_log) == (
        "x.db", True, 2.5, None, "e")


def test_a_refresh_longer_than_a_day_is_refused(capsys):
    # As [tui] refresh is: a timer that long cannot be set
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--refresh", "1e10"])
    assert stopped.value.code == 2
    assert "--refresh 1e+10: expected at most 86400 seconds (a day)" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf"])
def test_a_refresh_that_is_not_a_positive_number_of_seconds_is_refused(value, capsys):
    # As [tui] refresh = 0 is: 0 used to mean 1 s, a negative or nan 0.2 s, inf never.
    with pytest.raises(SystemExit) as stopped:
        parse_args(["--refresh", value])
    err = capsys.readouterr().err
    assert stopped.value.code == 2
    assert f"--refresh {value}: expected a number of seconds greater than 0" in err


def test_unavailable_database_is_shown_and_recovers(dashboard, seeded):
    aside = seeded.path.with_suffix(".aside")

    async def scenario(app, pilot):
        seeded.path.rename(aside)
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        status = app.screen.query_one("#status", Static)
        assert "database unavailable" in str(status.render())
        assert status.has_class("-problem")
        aside.rename(seeded.path)
        before = app.polls
        await pilot.press("ctrl+r")
        await wait_poll(app, pilot, since=before)
        assert str(status.render()).startswith("updated ")
        assert not status.has_class("-problem")

    drive(dashboard(), scenario)


def test_settings_file_gives_the_database(seeded, tmp_path):
    from tui.app import make_app

    settings = tmp_path / "dash.toml"
    settings.write_text(f'[runner]\ndatabase = "{seeded.path}"\n\n[tui]\nrefresh = 3\n')
    app = make_app(settings=settings)
    assert app.source.path == seeded.path and app.refresh_seconds == 3
    app.source.check()


def test_a_locked_database_is_a_message(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    create_schema(holder)  # a rollback-journal file: an exclusive writer locks readers out
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO runner_meta (key, value) VALUES ('x', 'y')")
    try:
        source = DataSource(path, DatabaseSection(busy_timeout=0.05, write_deadline=0.5))
        with pytest.raises(DatabaseLocked, match="locked"):
            source.check()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    source.check()  # and fine once the lock is gone


def test_the_dashboard_opens_the_database_the_service_environment_file_names(
        tmp_path, monkeypatch):
    # Given the service's settings named by its environment file, and its database,
    service_dir = tmp_path / "etc"
    service_dir.mkdir()
    env_file = service_dir / "jobrunner.env"
    env_file.write_text(f"RUNNER_SETTINGS={write_settings(service_dir)}\n")
    conn = sqlite3.connect(service_dir / "jobs.db")
    create_schema(conn)
    conn.close()
    # and a checkout with a settings file of its own as the working directory
    in_checkout_beside_service(tmp_path, monkeypatch, env_file)
    # When the dashboard starts there without --db or --settings, as the worker would
    app = make_app(error_log=tmp_path / "errors.log")

    async def scenario(app, pilot):
        # Then it shows the service's database
        status = str(app.screen.query_one("#status", Static).render())
        assert str(service_dir / "jobs.db") in status, status

    drive(app, scenario)
