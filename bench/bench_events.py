"""Event benchmark: emit rates and emit-to-handler-start latency, beside plain huey.

    .venv/bin/python bench/bench_events.py [--emits 3000] [--batched 20000] [--events 200]

Figures, all from one run (this machine is shared and noisy, so compare ratios):

* plain huey (``SqliteHuey``, its own file) enqueue rate from a script: the baseline;
* single ``emit()`` rate, at synchronous=FULL (plain huey's SQLite default: equal
  durability, the headline) and at our default NORMAL;
* ``emit_many()`` rate in batches of 100;
* emit-to-handler-start latency p50/p99 with 1 and 3 handlers per event: one event
  every 20 ms into a running ``run.py`` worker (FULL), measured from the time
  in the event data to the time each handler started.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from huey import SqliteHuey  # noqa: E402

from runner import configure, emit, emit_many, load_settings  # noqa: E402

SETTINGS = """
[runner]
database = "{db}"
imports = ["bench.event_tasks"]
[worker]
max_concurrent_tasks = 4
queue_size = 0
log_level = "WARNING"
[database]
synchronous = "{sync}"
"""


def settings_file(work: Path, sync: str) -> Path:
    path = work / f"settings-{sync}.toml"
    path.write_text(SETTINGS.format(db=work / f"jobs-{sync}.db", sync=sync))
    return path


def plain_enqueue_rate(work: Path, count: int) -> float:
    huey = SqliteHuey("bench", filename=str(work / "plain.db"))

    @huey.task()
    def noop(n):
        return n

    started = time.perf_counter()
    for n in range(count):
        noop(n)
    return count / (time.perf_counter() - started)


def emit_rate(count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        emit("bench.rate", {"n": n})
    return count / (time.perf_counter() - started)


def emit_many_rate(count: int, batch: int = 100) -> float:
    started = time.perf_counter()
    for start in range(0, count, batch):
        emit_many([("bench.rate", {"n": n}) for n in range(start, start + batch)])
    return count / (time.perf_counter() - started)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def latency(work: Path, settings: Path, events: int) -> dict[str, tuple[float, float, int]]:
    record = work / "latency.txt"
    env = {**os.environ, "BENCH_RECORD": str(record), "PYTHONPATH": str(ROOT)}
    log = (work / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--settings", str(settings)],
                              cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    os.environ["BENCH_RECORD"] = str(record)
    try:
        # Start-up (imports, recovery) is not latency: wait until a first event is handled.
        emit("bench.one", {"seq": -1, "t": time.time()})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (record.exists() and record.read_text()):
            time.sleep(0.05)
        for seq in range(events):
            emit("bench.one", {"seq": seq, "t": time.time()})
            time.sleep(0.02)
        for seq in range(events):
            emit("bench.three", {"seq": seq, "t": time.time(), "fanout": 3})
            time.sleep(0.02)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lines = record.read_text().splitlines() if record.exists() else []
            if len(lines) >= events * 4 + 1:
                break
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        log.close()
    delays: dict[str, list[float]] = {"one": [], "three": []}
    for line in record.read_text().splitlines():
        kind, seq, emitted, started = line.split()
        if int(seq) < 0:
            continue
        delays[kind].append(1000 * (float(started) - float(emitted)))
    return {k: (percentile(v, 50), percentile(v, 99), len(v)) for k, v in delays.items()}


def ratio_line(label: str, base: float, ours: float, unit: str) -> str:
    return f"  {label:<34} plain {base:>9,.0f} {unit}  ours {ours:>9,.0f} {unit}  " \
           f"ratio {ours / base:5.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emits", type=int, default=3000)
    parser.add_argument("--batched", type=int, default=20000)
    parser.add_argument("--events", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-events-"))
    print(f"event benchmark, work dir {work}")
    plain = plain_enqueue_rate(work, args.emits)
    rates = {}
    for sync in ("FULL", "NORMAL"):
        configure(load_settings(settings_file(work, sync), environ={}))
        emit("bench.warmup")
        rates[sync] = (emit_rate(args.emits), emit_many_rate(args.batched))
    print("emit rate from a script (plain = huey SqliteHuey enqueue of a no-op task):")
    print(ratio_line("single emit, FULL (equal durability)", plain, rates["FULL"][0], "/s"))
    print(ratio_line("single emit, NORMAL (our default)", plain, rates["NORMAL"][0], "/s"))
    print(ratio_line("emit_many x100, FULL", plain, rates["FULL"][1], "/s"))
    print(ratio_line("emit_many x100, NORMAL", plain, rates["NORMAL"][1], "/s"))
    configure(load_settings(settings_file(work, "FULL"), environ={}))
    found = latency(work, settings_file(work, "FULL"), args.events)
    print(f"emit-to-handler-start latency, one event every 20 ms, {args.events} events, FULL:")
    for kind, label in (("one", "1 handler"), ("three", "3 handlers")):
        p50, p99, n = found[kind]
        print(f"  {label:<12} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  ({n} handler starts)")


if __name__ == "__main__":
    main()
