"""/metrics from a real worker: counters never go down across a restart or a window; an
address it cannot have stops it in one line, before it opens the database."""

from __future__ import annotations

import socket
import time
import urllib.request

from runner.errors import EX_CONFIG, EX_TEMPFAIL
from runner.readmodel.prometheus import render_database
from runner.readmodel.scrape import read_database
from runner.store.factory import store_for
from runner.store.sqlite.counters import read_totals
from runner.store.sqlite.maintenance import RetentionSection, prune
from tests import jobs
from tests.conftest import wait_for, write_settings
from tests.unit.test_prometheus import counter_samples, families, samples


def assert_not_lower(before, after):
    lower = {k: (v, after.get(k)) for k, v in before.items() if after.get(k, -1) < v}
    assert not lower, f"counters went down or vanished: {lower}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path, method="GET"):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers), response.read().decode()


def scrape_when(port, condition):
    def attempt():
        try:
            text = get(port, "/metrics")[2]
        except OSError:
            return None
        return text if condition(text) else None
    return wait_for(attempt, timeout=20, message="a scrape showing the expected figures")


def test_counters_never_go_down_across_a_worker_restart_and_a_window_boundary(
        huey, make_worker, tmp_path):
    port = free_port()
    settings = write_settings(tmp_path, name="metrics.toml", extra=(
        f'[metrics]\nlisten = "127.0.0.1:{port}"\nname = "alpha"\n'))
    db = huey.jobs.db
    worker = make_worker(settings=settings)
    for i in range(5):
        jobs.add(i, i)
    jobs.always_fails("first")

    def finished(n_add, n_dead):
        def check():
            by = {t.task: t for t in read_totals(db)}
            return (by.get("add") and by["add"].completed == n_add and by.get("always_fails")
                    and by["always_fails"].dead == n_dead)
        return check

    wait_for(finished(5, 1), message="the first jobs to finish")
    first = scrape_when(port, lambda t: 'jobrunner_jobs_completed_total{task="add"' in t
                        and "jobrunner_worker_exporter" in t)
    parsed = samples(first)
    assert parsed[("jobrunner_jobs_completed_total", (("queue", "default"), ("task", "add")))] == 5
    assert parsed[("jobrunner_jobs_failed_total",
                   (("queue", "default"), ("task", "always_fails")))] == 3
    assert parsed[("jobrunner_job_duration_seconds_count",
                   (("queue", "default"), ("task", "add")))] == 5
    # This worker's own series carry its host and configured name, never a pid.
    me = (("host", socket.gethostname()), ("worker", "alpha"))
    assert parsed[("jobrunner_worker_threads", me)] == 4
    assert parsed[("jobrunner_worker_running_jobs", me)] == 0
    assert parsed[("jobrunner_worker_prefetched_jobs", me)] == 0
    assert parsed[("jobrunner_worker_exporter", me)] == 1
    assert parsed[("jobrunner_queue_oldest_waiting_seconds", (("queue", "default"),))] == 0
    assert ("process_cpu_seconds_total", ()) in parsed
    assert not [f for f in families(first).values() if f.type == "summary"]

    # HEAD answers like GET, without a body.
    status, headers, body = get(port, "/metrics", method="HEAD")
    assert status == 200 and body == "" and int(headers["Content-Length"]) > 0
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")

    # Across a window boundary (time is a parameter), and with the jobs pruned away.
    t0 = time.time()
    now_text = render_database(read_database(store_for(db), now=t0))
    hour_later = render_database(read_database(store_for(db), now=t0 + 3601))
    prune(db, RetentionSection(), now=t0 + 60 * 86400)
    assert db.query("SELECT count(*) FROM runner_job")[0][0] == 0
    pruned = render_database(read_database(store_for(db), now=t0 + 60 * 86400))
    assert_not_lower(counter_samples(first), counter_samples(now_text))
    assert_not_lower(counter_samples(now_text), counter_samples(hour_later))
    assert_not_lower(counter_samples(hour_later), counter_samples(pruned))

    # Across a worker restart.
    assert worker.terminate() == 0
    again = make_worker(settings=settings)
    jobs.add(7, 7)
    jobs.add(8, 8)
    wait_for(finished(7, 1), message="the jobs after the restart to finish")
    add = ("jobrunner_jobs_completed_total", (("queue", "default"), ("task", "add")))
    second = scrape_when(port, lambda t: samples(t).get(add) == 7)
    assert_not_lower(counter_samples(first), counter_samples(second))
    assert again.terminate() == 0


def test_a_listen_address_another_process_serves_stops_the_worker_with_75_in_one_line(
        tmp_path, make_worker):
    # Given another process (say, an older worker still draining) listening on the address
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        settings = write_settings(tmp_path, name="taken.toml",
                                  extra=f'[metrics]\nlisten = "127.0.0.1:{port}"\n')
        worker = make_worker(settings=settings)
        # Then the worker stops with the temporary failure's code: the address may free up
        assert worker.wait(60) == EX_TEMPFAIL, worker.output()
    said = f"[metrics] listen 127.0.0.1:{port}: address already in use"
    output = worker.output()
    assert "Traceback" not in output and output.count(said) == 1, output
    assert said in (tmp_path / "worker.log").read_text()
    # Nothing was opened: no database made, no worker row left behind to read as dead
    assert not (tmp_path / "jobs.db").exists()


def test_a_listen_address_this_host_does_not_have_stops_the_worker_with_78_in_one_line(
        tmp_path, make_worker):
    # 192.0.2.1 is TEST-NET-1: documentation only, no host has it
    settings = write_settings(tmp_path, name="elsewhere.toml", extra=(
        '[metrics]\nlisten = "192.0.2.1:9464"\nallow_remote = true\n'))
    worker = make_worker(settings=settings)
    assert worker.wait(60) == EX_CONFIG, worker.output()
    said = "[metrics] listen 192.0.2.1:9464: not an address of this host"
    output = worker.output()
    assert "Traceback" not in output and output.count(said) == 1, output
    assert str(settings) in output and said in (tmp_path / "worker.log").read_text()
    assert not (tmp_path / "jobs.db").exists()
