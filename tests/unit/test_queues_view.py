"""What ``python -m runner queues`` and the Queues view read: per queue state, limits, pauses."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from runner import pause_queue, pause_task
from runner.cli import main
from runner.readmodel.queues import queues_view
from runner.sections import QueueSection
from runner.testing import drain
from tests import jobs
from tests.conftest import write_settings
from tests.tui import dashboard_jobs


def test_each_queue_shows_its_jobs_limits_rate_and_pause(huey):
    settings = replace(huey.settings, queues={
        "default": QueueSection(),
        "mail": QueueSection(max_size=50, on_full="reject", concurrency=2, rate_limit="5/s"),
        "reports": QueueSection(paused=True)})
    jobs.add(1, 1)
    drain()
    jobs.add(2, 2)
    jobs.add.schedule((3, 3), delay=3600)
    dashboard_jobs.send_mail("a@example.com")
    pause_queue("mail", by="alice")
    pause_task("noop", by="bob")
    view = queues_view(huey.jobs.store, settings, time.time())
    by_name = {q.name: q for q in view.queues}
    assert list(by_name) == ["default", "mail", "reports"]
    default, mail, reports = by_name["default"], by_name["mail"], by_name["reports"]
    assert (default.waiting, default.scheduled, default.per_minute) == (1, 1, 1.0)
    assert default.oldest_waiting is not None and not default.paused
    assert (mail.waiting, mail.paused, mail.paused_by) == (1, True, "alice")
    assert (mail.max_size, mail.on_full, mail.concurrency, mail.rate_limit) == (
        50, "reject", 2, "5/s")
    # No worker has applied [queues.reports] paused yet: nothing holds its jobs
    assert (reports.paused, reports.paused_by, reports.pause_pending) == (False, None, True)
    assert [p.name for p in view.paused_tasks] == ["noop"]


def test_the_queues_command_prints_a_table(huey, tmp_path, capsys):
    settings = write_settings(tmp_path, name="cli.toml")
    jobs.add(1, 1)
    assert main(["--settings", str(settings), "queues", "pause", "default"]) == 0
    assert main(["--settings", str(settings), "queues"]) == 0
    out = capsys.readouterr().out
    assert "queue default: paused" in out
    row = next(line for line in out.splitlines() if line.startswith("default"))
    assert "paused by" in row and "(cli)" in row and "unbounded" in row
    assert "(1 queue, 1 paused)" in out


def test_show_says_when_a_jobs_queue_is_paused(huey, tmp_path, capsys):
    settings = write_settings(tmp_path, name="cli.toml")
    mail = dashboard_jobs.send_mail("a@example.com")
    pause_queue("mail")
    assert main(["--settings", str(settings), "show", mail.id]) == 0
    assert "mail (paused)" in capsys.readouterr().out


def test_a_settings_pause_shows_once_a_worker_applied_it(huey):
    settings = replace(huey.settings, queues={"default": QueueSection(),
                                              "reports": QueueSection(paused=True)})
    huey.jobs.store.seed_pauses("queue", ["reports"], now=time.time())
    reports = next(q for q in queues_view(huey.jobs.store, settings, time.time()).queues
                   if q.name == "reports")
    assert (reports.paused, reports.paused_by, reports.pause_pending) == (True, "settings", False)


def test_a_queue_shows_the_burst_its_bucket_holds(huey, tmp_path, capsys):
    settings = write_settings(tmp_path, name="cli.toml", extra=(
        "\n[queues.keyed]\nrate_limit = \"10/s\"\nburst = 5\n"
        "[queues.written]\nrate_limit = \"10/s burst 20\"\n"
        "[queues.plain]\nrate_limit = \"1000/s\"\n"))
    huey.jobs.db  # noqa: B018 - the jobs database exists (a listing creates none)
    assert main(["--settings", str(settings), "queues", "--json"]) == 0
    listed = {q["name"]: q for q in json.loads(capsys.readouterr().out)["queues"]}
    assert {name: (listed[name]["rate_limit"], listed[name]["burst"])
            for name in ("keyed", "written", "plain", "default")} == {
        "keyed": ("10/s", 5), "written": ("10/s burst 20", 20),
        "plain": ("1000/s", 100), "default": ("", 0)}
    assert main(["--settings", str(settings), "queues"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "rate 10/s burst 5" in rows["keyed"]
    assert "rate 10/s burst 20" in rows["written"] and "burst 20 burst" not in rows["written"]
    assert "rate 1000/s burst 100" in rows["plain"]
