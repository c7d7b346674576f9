"""python -m runner: job commands against a real database, as a user runs them."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from runner.store.sqlite import queries
from runner.testing import drain
from tests import jobs
from tests.conftest import ROOT, run_again_after_a_crash


def cli(settings, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings), *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_enqueue_then_jobs_lists_it(huey, settings_file):
    done = cli(settings_file, "enqueue", "add", "--args", "[2, 3]")
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    assert queries.get_job(huey.jobs.db, job_id).args == '{"args": [2, 3], "kwargs": {}}'
    listing = cli(settings_file, "jobs", "--state", "available")
    assert job_id[-12:] in listing.stdout and "(1 of 1 job)" in listing.stdout


def test_enqueue_refuses_unknown_tasks_and_bad_json_with_exit_65(huey, settings_file):
    unknown = cli(settings_file, "enqueue", "no_such_task")
    assert unknown.returncode == 65 and "no task named 'no_such_task'" in unknown.stderr
    bad = cli(settings_file, "enqueue", "add", "--args", "[1,")
    assert bad.returncode == 65 and "not valid JSON" in bad.stderr
    assert queries.count_jobs(huey.jobs.db) == 0


def test_show_prints_every_failed_attempt_with_its_traceback(huey, settings_file):
    result = jobs.always_fails("shown")
    drain(include_scheduled=True)
    shown = cli(settings_file, "show", result.id[-12:])
    assert shown.returncode == 0, shown.stderr
    assert "state: dead" in shown.stdout
    assert shown.stdout.count("Traceback (most recent call last)") == 3
    assert "ValueError: always fails shown" in shown.stdout


def test_retry_makes_a_dead_job_waiting_and_it_runs_again(huey, settings_file):
    result = jobs.fatal_fails()
    drain()
    assert cli(settings_file, "retry", result.id).returncode == 0
    row = queries.get_job(huey.jobs.db, result.id)
    assert (row.state, row.reason) == ("available", "retried by hand")
    drain()
    assert queries.get_job(huey.jobs.db, result.id).attempt == 2


def test_discard_and_cancel_refuse_jobs_in_the_wrong_state(huey, settings_file):
    waiting = jobs.add(1, 1)
    done = jobs.add(2, 2)
    huey.run_one()
    huey.run_one()
    fresh = jobs.add(3, 3)
    assert cli(settings_file, "cancel", fresh.id).returncode == 0
    assert queries.get_job(huey.jobs.db, fresh.id).state == "cancelled"
    refused = cli(settings_file, "discard", done.id)
    assert refused.returncode == 1 and "completed" in refused.stderr
    assert queries.get_job(huey.jobs.db, waiting.id).state == "completed"


def test_bulk_retry_by_filter_takes_failed_jobs_and_prints_the_exact_count(
        huey, settings_file):
    dead = [jobs.fatal_fails().id for _ in range(3)]
    done = jobs.add(1, 2)
    drain()
    waiting = jobs.add(3, 4)
    # No filter at all is refused: the whole table is never one keystroke away
    refused = cli(settings_file, "retry")
    assert refused.returncode == 1 and "--all" in refused.stderr
    dry = cli(settings_file, "retry", "--all", "--dry-run")
    assert dry.returncode == 0 and "3 jobs (dead, retrying, cancelled) match" in dry.stdout
    assert {queries.get_job(huey.jobs.db, j).state for j in dead} == {"dead"}
    retried = cli(settings_file, "retry", "--all")
    assert retried.returncode == 0, retried.stderr
    assert "retry: 3 of 3 jobs" in retried.stdout
    assert {queries.get_job(huey.jobs.db, j).state for j in dead} == {"available"}
    # Completed jobs run again only when the filter names them
    assert queries.get_job(huey.jobs.db, done.id).state == "completed"
    assert queries.get_job(huey.jobs.db, waiting.id).state == "available"
    # One by id, as before
    assert cli(settings_file, "discard", dead[0]).returncode == 0
    assert queries.get_job(huey.jobs.db, dead[0]).reason == "discarded by hand"


def test_bulk_discard_and_cancel_by_task_leave_other_jobs_alone(huey, settings_file):
    adds = [jobs.add(i, i).id for i in range(2)]
    noops = [jobs.noop(i).id for i in range(3)]
    cancelled = cli(settings_file, "cancel", "--task", "noop")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancel: 3 of 3 jobs" in cancelled.stdout
    [reason] = {queries.get_job(huey.jobs.db, j).reason for j in noops}
    assert reason.startswith("cancelled by ") and reason.endswith(" (cli)"), reason
    assert {queries.get_job(huey.jobs.db, j).state for j in adds} == {"available"}
    discarded = cli(settings_file, "discard", "--state", "available", "--search", "add")
    assert "discard: 2 of 2 jobs" in discarded.stdout, discarded.stderr
    assert {queries.get_job(huey.jobs.db, j).reason for j in adds} == {"discarded by hand"}
    both = cli(settings_file, "discard", adds[0], "--task", "add")
    assert both.returncode == 1 and "not both" in both.stderr
    wrong = cli(settings_file, "cancel", "--state", "completed")
    assert wrong.returncode == 1 and "completed jobs cannot be cancelled" in wrong.stderr


def test_check_validates_settings_imports_and_database(huey, settings_file, tmp_path):
    ok = cli(settings_file, "check")
    assert ok.returncode == 0 and ok.stdout.startswith("ok:"), ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[worker]\nretry_limit = -1\n")
    assert cli(bad, "check").returncode == 78
    two_bursts = tmp_path / "bursts.toml"
    two_bursts.write_text(settings_file.read_text() + "\n[queues.rl]\n"
                          "rate_limit = \"10/s burst 20\"\nburst = 1\n")
    refused = cli(two_bursts, "check")
    assert refused.returncode == 78, refused.stdout + refused.stderr
    assert "[queues.rl] rate_limit '10/s burst 20' has burst 20 but burst = 1" in refused.stderr
    stray = tmp_path / "stray.toml"
    stray.write_text(settings_file.read_text() + "\n[tasks.add]\nconcurrency = 1\n"
                     "[tasks.ad]\nconcurrency = 1\n")
    refused = cli(stray, "check")
    assert refused.returncode == 78, refused.stdout + refused.stderr
    assert "[tasks.ad] names no task" in refused.stderr and "[tasks.add]" not in refused.stderr
    handler = tmp_path / "handler.toml"
    handler.write_text(settings_file.read_text() + "\n[events.handlers.handle_sigup]\n"
                       "timeout = 5\n")
    refused = cli(handler, "check")
    assert refused.returncode == 78, refused.stdout + refused.stderr
    assert "[events.handlers.handle_sigup] names no event handler" in refused.stderr


@pytest.mark.parametrize(("database", "said"), [
    ("{tmp}/settings.toml/jobs.db", "settings.toml is a file, not a directory"),
    ("/proc/no-such-dir/jobs.db", "cannot create files under /proc"),
])
def test_check_refuses_a_database_path_the_worker_cannot_create(settings_file, tmp_path,
                                                                 database, said):
    path = database.format(tmp=tmp_path)
    settings = tmp_path / "elsewhere.toml"
    settings.write_text(settings_file.read_text().replace('database = "jobs.db"',
                                                          f'database = "{path}"'))
    assert path in settings.read_text()
    checked = cli(settings, "check")
    assert checked.returncode == 73, checked.stdout + checked.stderr
    assert said in checked.stderr and "worker cannot create" in checked.stderr, checked.stderr


def test_check_notes_a_listen_address_in_use_and_leaves_it_to_its_holder(settings_file,
                                                                         tmp_path):
    # Given a process listening on the address (a running worker's exporter, say)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        settings = tmp_path / "taken.toml"
        settings.write_text(settings_file.read_text()
                            + f'\n[metrics]\nlisten = "127.0.0.1:{port}"\n')
        checked = cli(settings, "check")
        # Then check passes, with a note of what a worker started now would meet
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"note: {settings}: [metrics] listen 127.0.0.1:{port} is in use" in checked.stdout
        # and the holder still serves: check took nothing from it
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass


def test_check_refuses_a_listen_address_this_host_does_not_have(settings_file, tmp_path):
    settings = tmp_path / "elsewhere.toml"
    settings.write_text(settings_file.read_text() + '\n[metrics]\nlisten = "192.0.2.1:9464"\n'
                        "allow_remote = true\n")
    checked = cli(settings, "check")
    assert checked.returncode == 78, checked.stdout + checked.stderr
    assert checked.stderr == (f"error: {settings}: [metrics] listen 192.0.2.1:9464: not an "
                              "address of this host (cannot assign requested address)\n")


def test_check_shows_where_a_task_module_failed_at_import(tmp_path):
    (tmp_path / "failing_tasks.py").write_text(
        "import helpers\n")
    (tmp_path / "helpers.py").write_text(
        "def load_config():\n    raise RuntimeError('config missing')\n\n\nload_config()\n")
    settings = tmp_path / "failing.toml"
    settings.write_text('[runner]\nimports = ["failing_tasks"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    checked = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                              "check"], cwd=tmp_path, capture_output=True, text=True, env=env,
                             timeout=60)
    assert checked.returncode == 78, checked.stdout + checked.stderr
    lines = checked.stderr.splitlines()
    assert lines[0] == ("error: [runner] imports: cannot import task module 'failing_tasks': "
                        "RuntimeError: config missing")
    # Every frame from the module named in the settings down to the raise, and no other
    assert lines[1:] == [
        "    | Traceback (most recent call last):",
        f'    |   File "{tmp_path / "failing_tasks.py"}", line 1, in <module>',
        "    |     import helpers",
        f'    |   File "{tmp_path / "helpers.py"}", line 5, in <module>',
        "    |     load_config()",
        f'    |   File "{tmp_path / "helpers.py"}", line 2, in load_config',
        "    |     raise RuntimeError('config missing')",
        "    | RuntimeError: config missing",
    ], checked.stderr


def test_check_names_a_task_module_that_is_not_there_in_one_line(tmp_path):
    settings = tmp_path / "missing.toml"
    settings.write_text('[runner]\nimports = ["no_such_tasks"]\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    checked = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                              "check"], cwd=tmp_path, capture_output=True, text=True, env=env,
                             timeout=60)
    # No frame of it to show: the line says it all
    assert checked.returncode == 78
    assert checked.stderr == ("error: [runner] imports: cannot import task module "
                              "'no_such_tasks': ModuleNotFoundError: No module named "
                              "'no_such_tasks'\n")


def test_workers_lists_registered_processes(huey, settings_file, make_worker):
    from tests.conftest import wait_for

    worker = make_worker()
    wait_for(lambda: queries.list_workers(huey.jobs.db), message="worker to register")
    listing = cli(settings_file, "workers")
    assert "running" in listing.stdout and str(worker.proc.pid) in listing.stdout
    worker.terminate()


def test_a_database_from_a_newer_release_is_refused_with_exit_78(tmp_path, settings_file):
    import sqlite3

    from runner.store.sqlite.migrations import SCHEMA_VERSION
    from tests.unit.test_schema import _old_file

    newer = SCHEMA_VERSION + 1
    _old_file(tmp_path / "jobs.db")
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        conn.execute("UPDATE runner_meta SET value = ? WHERE key = 'schema'", (str(newer),))
    for command in ([sys.executable, "-m", "runner", "--settings", str(settings_file), "jobs"],
                    [sys.executable, "run.py", "--settings", str(settings_file)]):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=60,
                              env={**env, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 78, (command, done.stderr)
        assert f"schema version {newer}, written by a newer jobrunner" in done.stderr


def test_a_damaged_schema_version_stops_every_program_with_exit_65(tmp_path, settings_file):
    import sqlite3

    from tests.unit.test_schema import _old_file

    _old_file(tmp_path / "jobs.db")
    with sqlite3.connect(tmp_path / "jobs.db") as conn:
        conn.execute("UPDATE runner_meta SET value = 'abc' WHERE key = 'schema'")
    conn.close()
    settings = ["--settings", str(settings_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    # health is a probe: it answers 1, unhealthy, with the same line
    for command, code in ((["-m", "runner", *settings, "check"], 65),
                          (["-m", "runner", *settings, "jobs"], 65),
                          (["-m", "runner", *settings, "health"], 1),
                          (["-m", "runner", *settings, "enqueue", "add", "--args", "[1, 2]"], 65),
                          (["run.py", *settings], 65), (["-m", "tui", *settings], 65)):
        done = subprocess.run([sys.executable, *command], capture_output=True, text=True,
                              cwd=ROOT, timeout=60, env={**env, "PYTHONPATH": str(ROOT)},
                              stdin=subprocess.DEVNULL)
        output = done.stdout + done.stderr
        assert done.returncode == code, (command, output)
        assert "Traceback" not in output, (command, output)
        assert f"{tmp_path / 'jobs.db'}: runner_meta records schema version 'abc'" in output


def test_enqueue_refuses_delays_and_priorities_out_of_range_with_exit_65(huey, settings_file):
    # Not a number at all, too: argparse's own refusal exited 2 with its usage line
    for option, value in (("--delay", "nan"), ("--delay", "inf"), ("--delay", "1e300"),
                          ("--delay", "-5"), ("--priority", str(10**23)),
                          ("--priority", "1.5"), ("--priority", "high"),
                          ("--delay", "soon")):
        done = cli(settings_file, "enqueue", "add", "--args", "[1, 2]", option, value)
        assert done.returncode == 65, (option, value, done.stderr)
        assert done.stderr.startswith(f"error: {option} ") and "Traceback" not in done.stderr
    for value in ("inf", "soon"):
        emitted = cli(settings_file, "emit", "user.signup", "--delay", value)
        assert emitted.returncode == 65 and "Traceback" not in emitted.stderr, emitted.stderr
    assert queries.count_jobs(huey.jobs.db) == 0
    done = cli(settings_file, "enqueue", "add", "--args", "[1, 2]", "--delay", "60",
               "--priority", str(2**63 - 1))
    assert done.returncode == 0, done.stderr


def test_listings_refuse_a_limit_below_one_with_exit_65(huey, settings_file):
    # --limit 0 listed nothing and --limit -1 everything, with no word of either
    jobs.add(1, 2)
    for command in (("jobs",), ("events",), ("logs",), ("schedules", "show", "nightly")):
        for value in ("0", "-1"):
            done = cli(settings_file, *command, "--limit", value)
            assert done.returncode == 65, (command, value, done.stdout, done.stderr)
            assert done.stderr.startswith(f"error: --limit {value}: expected") and (
                "Traceback" not in done.stderr), (command, done.stderr)
    assert cli(settings_file, "jobs", "--limit", "1").returncode == 0


def test_search_matches_percent_and_underscore_literally(huey, settings_file):
    jobs.add("100%", "a_b")
    jobs.add("1000", "axb")
    listing = cli(settings_file, "jobs", "--search", "100%")
    assert "(1 of 1 job)" in listing.stdout, listing.stdout
    assert "(1 of 1 job)" in cli(settings_file, "jobs", "--search", "a_b").stdout
    assert "(2 of 2 jobs)" in cli(settings_file, "jobs", "--search", "100").stdout


def test_jobs_refuses_a_state_that_does_not_exist_instead_of_listing_nothing(
        huey, settings_file):
    jobs.add(1, 2)
    typo = cli(settings_file, "jobs", "--state", "availble")
    assert typo.returncode == 2 and "(0 of 0 jobs)" not in typo.stdout
    assert "invalid choice: 'availble'" in typo.stderr and "waiting" in typo.stderr
    assert "(1 of 1 job)" in cli(settings_file, "jobs", "--state", "waiting").stdout


def test_a_job_run_again_after_a_crash_never_shows_more_attempts_than_allowed(huey,
                                                                               settings_file):
    job_id = run_again_after_a_crash(huey)
    shown = cli(settings_file, "show", job_id)
    assert shown.returncode == 0, shown.stderr
    assert "attempt: 2 (1 of 1 allowed +1 crash)" in shown.stdout
    listing = cli(settings_file, "jobs")
    assert "1/1 +1 crash" in listing.stdout and "2/1" not in listing.stdout


def test_attempts_a_task_asked_for_are_shown_apart_from_those_its_limit_counted(
        huey, settings_file):
    # Given a job with 2 retries whose task asked once for another attempt (Retry), then
    # failed three times: it ran 4 times, and its limit counted 3 of them
    result = jobs.asks_a_retry_then_loses_its_connection("cli")
    drain(include_scheduled=True)
    shown = cli(settings_file, "show", result.id)
    assert shown.returncode == 0, shown.stderr
    assert "attempt: 4 (3 of 3 allowed +1 requested)" in shown.stdout
    listing = cli(settings_file, "jobs")
    assert "3/3 +1 requested" in listing.stdout and "4/3" not in listing.stdout


def test_a_worker_not_measured_yet_shows_dashes_not_zeros(huey, tmp_path, make_worker):
    from tests.conftest import wait_for, write_settings

    # Given a worker whose only row so far is its registration (the first lifeline beat,
    # which measures memory and CPU, is a minute away)
    slow = write_settings(tmp_path, worker={"heartbeat_interval": 60, "lease_seconds": 120},
                          name="slow.toml")
    worker = make_worker(settings=slow)
    wait_for(lambda: queries.list_workers(huey.jobs.db), message="worker to register")
    row = next(line for line in cli(slow, "workers").stdout.splitlines()
               if str(worker.proc.pid) in line)
    # Then neither listing reads as a process using no memory and no CPU
    assert "0MiB" not in row and "0.0%" not in row, row
    assert row.split()[7:9] == ["-", "-"], row  # RSS, CPU
    stats = cli(slow, "stats").stdout
    [beat] = [line for line in stats.splitlines() if str(worker.proc.pid) in line]
    assert "0MiB" not in beat and beat.split()[5:7] == ["-", "-"], beat  # after STATE
    worker.terminate()
