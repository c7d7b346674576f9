"""The exposition text: Prometheus' parser and promtool read it, naming rules hold."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from runner.readmodel.prometheus import render_database, render_worker
from runner.readmodel.scrape import (
    BuildInfo,
    ProcessStats,
    WorkerSnapshot,
    build_info,
    read_database,
    read_process,
)
from runner.store.factory import store_for
from runner.store.sqlite.counters import BUCKETS
from runner.testing import drain
from tests import jobs


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def counter_samples(text):
    """Every jobrunner counter and histogram sample: each must never go down.

    (``process_*`` counters belong to one process and start again with it.)
    """
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) if f.type in ("counter", "histogram")
            for s in f.samples if s.name.startswith("jobrunner_")}










def test_histogram_buckets_parse_cumulative_with_inf_equal_to_count(huey):
    for i in range(3):
        jobs.add(i, i)
    drain()
    family = families(render_database(read_database(huey.jobs.store), build_info()))
    hist = family["jobrunner_job_duration_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    assert len(buckets) == len(BUCKETS) + 1
    values = [s.value for s in buckets]
    assert values == sorted(values) and buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in hist.samples if s.name.endswith("_count"))
    assert values[-1] == count == 3
    assert family["jobrunner_build_info"].samples[0].value == 1


def test_oldest_waiting_is_zero_when_nothing_waits_and_counts_the_backlog(huey):
    db = huey.jobs.db
    jobs.add(1, 1)
    drain()
    (queue,) = read_database(store_for(db)).queues
    assert (queue.due, queue.scheduled, queue.oldest_waiting_seconds) == (0, 0, 0.0)
    jobs.add(2, 2)
    jobs.noop.schedule(delay=3600)
    (queue,) = read_database(store_for(db), now=time.time() + 30).queues
    assert (queue.due, queue.scheduled) == (1, 1) and queue.oldest_waiting_seconds >= 30


def test_queues_with_waiting_jobs_show_without_counters(huey):
    db = huey.jobs.db
    jobs.add(1, 1)
    for queue in ("mail", "reports"):
        db.write(lambda c, q=queue: c.execute(
            "INSERT INTO runner_job (id, task, queue, state, data, run_at, created_at) "
            "VALUES (?, 'add', ?, 'available', x'00', 0, 0)", (f"job-{q}", q)))
    db.write(lambda c: c.execute("DELETE FROM runner_job_total"))  # a database made before
    snapshot = read_database(store_for(db))
    assert [(q.queue, q.due) for q in snapshot.queues] == [
        ("default", 1), ("mail", 1), ("reports", 1)]


def worker_snapshot():
    return WorkerSnapshot(host="h", name="w", threads=4, running=2, prefetched=3,
                          last_heartbeat=time.time(), cpu_ratio=0.25, paused=False,
                          exporter=True, process=read_process())


def test_promtool_check_metrics_finds_no_problem(huey):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus to run this check)")
    jobs.add(1, 1)
    jobs.always_fails("p")
    drain(include_scheduled=True)
    text = (render_worker(worker_snapshot(), build_info())
            + render_database(read_database(huey.jobs.store)))
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), \
        result.stdout + result.stderr


def test_worker_series_follow_the_naming_rules():
    text = render_worker(worker_snapshot(), BuildInfo("1.2.3", "3.11.7"))
    fams = families(text)
    assert fams["jobrunner_worker_cpu_ratio"].samples[0].value == 0.25
    assert fams["jobrunner_worker_running_jobs"].samples[0].value == 2
    assert fams["jobrunner_worker_prefetched_jobs"].samples[0].value == 3
    assert fams["jobrunner_build_info"].samples[0].labels == {"version": "1.2.3",
                                                              "python": "3.11.7"}
    assert "jobrunner_worker_last_heartbeat_timestamp_seconds" in fams
    stats = ProcessStats(1.5, 10, 20, 1000.0, None, None)
    bare = render_worker(WorkerSnapshot("h", "w", 0, 0, 0, None, None, True, False, stats),
                         BuildInfo("x", "y"))
    assert "process_open_fds" not in bare and "last_heartbeat" not in bare
    assert samples(bare)[("jobrunner_worker_paused", (("host", "h"), ("worker", "w")))] == 1


def test_cli_writes_the_database_series_to_a_textfile(huey, tmp_path, capsys):
    from runner.cli import main as cli

    jobs.add(1, 1)
    drain()
    target = tmp_path / "collector" / "jobrunner.prom"
    target.parent.mkdir()
    settings = str(huey.settings.path)
    assert cli(["--settings", settings, "metrics", "--textfile", str(target)]) == 0
    text = target.read_text()
    assert samples(text)[("jobrunner_jobs_completed_total",
                          (("queue", "default"), ("task", "add")))] == 1
    assert "process_cpu_seconds_total" not in text  # node_exporter has its own process_*
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["jobrunner.prom"]
    assert cli(["--settings", settings, "metrics", "--textfile",
                str(tmp_path / "missing" / "x.prom")]) == 78
    assert "--textfile" in capsys.readouterr().err
