"""The worker's HTTP listener: scrapes one at a time, HEAD like GET without a body; bound
before it answers, and let go whether it answered or not."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from runner.readmodel.health import HealthReport
from runner.worker.http_server import MetricsServer


def test_concurrent_scrapes_run_one_at_a_time_and_head_has_no_body(huey):
    inside = 0
    peak = 0
    lock = threading.Lock()

    def metrics() -> str:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        time.sleep(0.05)  # widen the window in which two scrapes could overlap
        with lock:
            inside -= 1
        return "jobrunner_workers 1\n"

    server = MetricsServer("127.0.0.1", 0)
    server.start(huey.jobs.db, lambda: HealthReport(True, "ok"), metrics)
    url = f"http://127.0.0.1:{server.port}"
    statuses: list[int] = []

    def scrape() -> None:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            statuses.append(response.status)

    try:
        threads = [threading.Thread(target=scrape) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert statuses == [200] * 4 and peak == 1
        head = urllib.request.Request(f"{url}/metrics", method="HEAD")
        with urllib.request.urlopen(head, timeout=10) as response:
            assert response.status == 200 and response.read() == b""
            assert int(response.headers["Content-Length"]) == len("jobrunner_workers 1\n")
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as response:
            assert response.read() == b"ok\n"
    finally:
        server.stop()


def test_a_listener_bound_but_never_started_lets_its_address_go_at_once():
    # As when the worker stops before it runs (a corrupt database, a stop while waiting
    # for the server): nothing waits for a serving loop that never began
    server = MetricsServer("127.0.0.1", 0)
    port = server.port
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(5)
    assert not stopper.is_alive(), "stop() waited for a server that never served"
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))
        again.listen(1)
