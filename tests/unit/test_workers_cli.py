"""python -m runner workers: the heartbeat ages it prints."""

from __future__ import annotations

import subprocess
import sys
import time

from runner.cli import main


def test_a_heartbeat_stamped_ahead_of_this_clock_reads_as_just_now(huey, settings_file,
                                                                   capsys):
    # Given a worker on a host whose clock runs a little ahead (or one that beat while
    # the command opened the database)
    store = huey.jobs.store
    store.register("other-host:42:1", concurrency=4, queues=(), now=time.time() + 2)
    store.heartbeat("other-host:42:1", [], lease_seconds=30, now=time.time() + 2)
    # When the workers are listed, Then its heartbeat is not from the future
    assert main(["--settings", str(settings_file), "workers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("other-host"))
    assert "running  0ms ago" in row, row


def test_a_worker_whose_heartbeat_is_stale_reads_as_silent_as_on_the_dashboard(
        huey, settings_file, capsys):
    # Given a worker of another host that stopped beating a minute ago (killed, or its
    # host went down): its row still says running until a lease expiry reaps it
    store = huey.jobs.store
    store.register("other-host:42:1", concurrency=4, queues=(), now=time.time() - 60)
    store.heartbeat("other-host:42:1", [], lease_seconds=30, now=time.time() - 60)
    # When the workers are listed
    assert main(["--settings", str(settings_file), "workers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("other-host"))
    # Then it is not shown as running, as `health` and the dashboard do not count it
    assert "silent" in row and "(stale)" in row and "running" not in row, row


def test_a_killed_worker_of_this_node_reads_as_gone_under_its_node_name(
        huey, settings_file, capsys, monkeypatch):
    # Given a worker of this host named by RUNNER_NODE_NAME, killed (its row says running)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    huey.jobs.store.register(f"node-7:{gone.pid}:1", concurrency=4, queues=(),
                             now=time.time())
    # When the CLI runs with the same environment as the service
    monkeypatch.setenv("RUNNER_NODE_NAME", "node-7")
    assert main(["--settings", str(settings_file), "workers"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.startswith("node-7"))
    # Then the worker is known dead, as the worker on this node would find it
    assert "dead (process gone)" in row, row
