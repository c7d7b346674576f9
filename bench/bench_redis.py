"""Redis benchmark: plain huey (``RedisHuey``) and this runner on Redis, in the same run.

    .venv/bin/python bench/bench_redis.py [--jobs 20000] [--rounds 3] [--idle 10] [--memory]

Figures: enqueue rate from a script, drain throughput of pre-enqueued no-op
jobs with 1 and 4 worker threads, and enqueue-to-start latency (first job,
p50, p99) for a job every 20 ms after an idle period. Both sides run what a
user gets (our task: timeout 300 s, retries; both consumers log at INFO), and
every job must have run exactly once by what the tasks recorded. Plain huey
pops a job before running it (a crash loses it); ours claims it into the
worker's in-flight set under a lease (at-least-once). Each figure is the
median of ``--rounds`` rounds run A B A B. ``--memory`` also measures the Redis
memory of 100,000 jobs (waiting, then completed and retained) and of 100,000
log records, summed with ``MEMORY USAGE`` over the benchmark's own keys.
``--callgrind`` measures only the client's instructions per single enqueue, which
do not move with the load of the machine. ``--enqueue-only`` measures only the
enqueue rate from a script, in ``--rounds`` rounds A B A B of ``--jobs`` jobs
each into fresh keys, with no worker running and nothing else between them
(every call's job counted), and prints every round.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    line,
    percentile,
    python,
    read_record,
    spawn,
    stop,
    wait_until,
)

URL = "redis://127.0.0.1:6379/0"

SETTINGS = """
[runner]
imports = ["bench.redis_tasks"]
redis_url = "{url}"
redis_prefix = "{prefix}"
[worker]
queue_type = "redis"
max_concurrent_tasks = {workers}
queue_size = 0
log_level = "INFO"
"""


class System:
    """How to enqueue into and consume from one system under test (its own keys)."""

    def __init__(self, name: str, work: Path, workers: int, url: str) -> None:
        self.name, self.workers, self.url = name, workers, url
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-w{workers}-", dir=work))
        self.key = f"bench-{uuid.uuid4().hex[:12]}"
        self.record = self.dir / "record.txt"
        self.log = self.dir / "consumer.log"
        self.env = {"BENCH_RECORD": str(self.record), "BENCH_HUEY_NAME": self.key,
                    "BENCH_REDIS_URL": url}
        self.settings = self.dir / "settings.toml"
        self.settings.write_text(SETTINGS.format(url=url, prefix=self.key, workers=workers))

    def enqueue(self, count: int, interval: float = 0.0, out: Path | None = None) -> float:
        args = [python(), "-m", "bench.enqueue", "plain" if self.name == "plain" else "ours",
                str(count), "--settings", str(self.settings), "--tasks", "bench.redis_tasks"]
        if interval:
            args += ["--interval", str(interval), "--out", str(out)]
        proc = spawn(args, self.env, self.dir, self.dir / "enqueue.log")
        proc.wait()
        text = (self.dir / "enqueue.log").read_text().split()
        return float(text[-1])

    def consumer(self):  # noqa: ANN201
        if self.name == "plain":
            args = [python(), "-m", "huey.bin.huey_consumer", "bench.redis_tasks.plain",
                    "-w", str(self.workers), "-k", "thread"]
        else:
            args = [python(), str(Path(__file__).resolve().parent.parent / "run.py"),
                    "--settings", str(self.settings)]
        return spawn(args, self.env, self.dir, self.log)

    def written(self) -> int:
        """Jobs waiting in this system's keys (what an enqueue-only run must have written)."""
        if self.name == "plain":
            name = re.sub("[^A-Za-z0-9_]", "", self.key)  # as RedisStorage cleans it
            return int(redis.Redis.from_url(self.url).llen(f"huey.redis.{name}"))
        from runner.store.redis import RedisStore

        store = RedisStore(self.url, prefix=self.key)
        try:
            return store.count_in_state("available")
        finally:
            store.close()

    def records(self) -> list[tuple[int, float]]:
        return [r for r in read_record(self.record) if r[0] >= 0]

    def clean(self) -> None:
        client = redis.Redis.from_url(self.url)
        keys = list(client.scan_iter(match=f"*{self.key}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])


def drain(system: System, jobs: int) -> tuple[float, float]:
    """(enqueue rate, drain rate) for ``jobs`` pre-enqueued no-op jobs."""
    try:
        enqueue_rate = system.enqueue(jobs)
        proc = system.consumer()
        ok = wait_until(lambda: len(system.records()) >= jobs, timeout=300, interval=0.2)
        stop(proc)
        rows = system.records()
        ids = sorted(n for n, _ in rows)
        if not ok or ids != list(range(jobs)):
            raise SystemExit(f"{system.name}: expected every id exactly once, got {len(ids)} "
                             f"records, {len(set(ids))} distinct")
        times = sorted(at for _, at in rows)
        return enqueue_rate, (jobs - 1) / (times[-1] - times[0])
    finally:
        system.clean()


def latency(system: System, idle: float, count: int = 250) -> tuple[float, float, float]:
    """(first job ms, p50 ms, p99 ms) of a job every 20 ms after ``idle`` seconds idle."""
    try:
        proc = system.consumer()
        time.sleep(2.0 + idle)  # start-up, then idle
        out = system.dir / "enqueued.txt"
        system.enqueue(count, interval=0.02, out=out)
        wait_until(lambda: len(system.records()) >= count, timeout=60)
        stop(proc)
        sent = dict(read_record(out))
        started = dict(system.records())
        if sorted(started) != list(range(count)):
            raise SystemExit(f"{system.name}: latency run lost or duplicated jobs")
        delays = [1000 * (started[n] - sent[n]) for n in range(count)]
        return delays[0], percentile(delays, 50), percentile(delays, 99)
    finally:
        system.clean()


def instructions(system: System, count: int) -> int:
    """User-space instructions of one ``bench.enqueue`` run of ``count`` jobs (callgrind)."""
    out = system.dir / f"callgrind-{count}.out"
    args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
            "--collect-jumps=no", python(), "-m", "bench.enqueue",
            "plain" if system.name == "plain" else "ours", str(count),
            "--settings", str(system.settings), "--tasks", "bench.redis_tasks"]
    try:
        spawn(args, system.env, system.dir, system.dir / "callgrind.log").wait()
        if (written := system.written()) != count + 1:  # the calls and the opening one
            raise SystemExit(f"{system.name}: {written} jobs written for {count + 1} calls")
    finally:
        system.clean()
    for text in out.read_text().splitlines():
        if text.startswith(("summary:", "totals:")):
            return int(text.split()[1])
    raise SystemExit(f"no totals in {out}")


def callgrind(work: Path, url: str, small: int = 200, large: int = 1200) -> None:
    """Client instructions per single enqueue, both sides (the runs' difference: start-up
    cancels out). Redis's own work is not counted: ``INFO commandstats`` has it per command."""
    per = {}
    for name in ("plain", "ours"):
        runs = [instructions(System(name, work, 1, url), n) for n in (small, large)]
        per[name] = (runs[1] - runs[0]) / (large - small)
    print(f"client instructions per single enqueue (callgrind, {large} - {small} jobs): "
          f"plain huey {per['plain']:,.0f}, ours {per['ours']:,.0f} "
          f"({per['plain'] / per['ours']:.2f}x)")


def enqueue_only(work: Path, url: str, jobs: int, rounds: int) -> None:
    """Enqueue rate from a script, rounds A B A B, each into fresh keys, nothing else running."""
    runs: dict[str, list[float]] = {"plain": [], "ours": []}
    for _ in range(rounds):
        for name, rates in runs.items():
            system = System(name, work, 1, url)
            try:
                rates.append(system.enqueue(jobs))
                if (written := system.written()) != jobs + 1:  # and the call that connects
                    raise SystemExit(f"{name}: {written} jobs written for {jobs + 1} calls")
            finally:
                system.clean()
    print(f"enqueue from a script, {jobs} jobs, {rounds} rounds A B A B (medians; rounds: "
          f"plain {' '.join(f'{r:.0f}' for r in runs['plain'])}; "
          f"ours {' '.join(f'{r:.0f}' for r in runs['ours'])}):")
    print(line("enqueues/s", statistics.median(runs["plain"]), statistics.median(runs["ours"]),
               "/s"))
    paired = statistics.median(o / p for p, o in zip(runs["plain"], runs["ours"], strict=True))
    print(f"  median of the paired rounds' ratio: {paired:.2f}x")


def memory(url: str, count: int = 100_000) -> None:
    """Bytes Redis holds for ``count`` jobs (waiting, then completed) and log records."""
    from runner.store.job_rows import Ack, NewJob
    from runner.store.redis import RedisStore

    store = RedisStore(url, prefix=f"bench-mem-{uuid.uuid4().hex[:12]}")

    def used() -> int:
        return sum(int(store.r.memory_usage(k, samples=0) or 0)
                   for k in store.r.scan_iter(match=store.p + "*", count=1000))

    try:
        now = time.time()
        for _ in range(count // 1000):
            store.enqueue([NewJob(f"{uuid.uuid4()}", "bench.redis_tasks.runner_noop", "default",
                                  0, b"x" * 120, "(1,)", 4, now) for _n in range(1000)], now=now)
        waiting = used()
        while True:
            claimed = store.claim(now=now, owner="bench:1:1", lease_seconds=60, want=1000)
            if not claimed.claimed:
                break
            store.complete([Ack(c.id, c.attempt, now, now + 0.001) for c in claimed.claimed])
        completed = used()
        store.delete_all()
        rows = [(now, 20, "app", "line of a job's log output, about sixty bytes long ....",
                 None, None, "bench:1:1")] * 1000
        for _ in range(count // 1000):
            store.write_logs(rows)
        logs = used()
        print(f"\nRedis memory for {count:,} jobs (120-byte payloads), MEMORY USAGE summed:")
        print(f"  waiting:                 {waiting / 2**20:8.1f} MiB "
              f"({waiting / count:.0f} B/job)")
        print(f"  completed (retained):    {completed / 2**20:8.1f} MiB "
              f"({completed / count:.0f} B/job)")
        print(f"  {count:,} log records:    {logs / 2**20:8.1f} MiB ({logs / count:.0f} B/record)")
    finally:
        store.delete_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--callgrind", action="store_true",
                        help="only the client instructions per enqueue, under valgrind")
    parser.add_argument("--enqueue-only", action="store_true",
                        help="only the enqueue rate from a script, rounds A B A B")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    if args.callgrind:
        callgrind(work, args.url)
        return
    if args.enqueue_only:
        enqueue_only(work, args.url, args.jobs, args.rounds)
        return
    print(f"redis benchmark: {args.jobs} no-op jobs, {args.rounds} rounds A B A B (medians), "
          f"Redis {args.url}, work dir {work}")
    print("plain = huey RedisHuey (thread workers, INFO, pops a job: a crash loses it); ours = "
          "queue_type redis with the defaults (leases, timeout 300 s, retries, INFO)\n")
    for workers in (1, 4):
        runs: dict[str, list[tuple[float, float]]] = {"plain": [], "ours": []}
        for _ in range(args.rounds):
            runs["plain"].append(drain(System("plain", work, workers, args.url), args.jobs))
            runs["ours"].append(drain(System("ours", work, workers, args.url), args.jobs))
        enq = {k: statistics.median(e for e, _ in v) for k, v in runs.items()}
        rate = {k: statistics.median(d for _, d in v) for k, v in runs.items()}
        print(f"drain, {workers} worker thread(s):")
        print(line("jobs/s", rate["plain"], rate["ours"], "jobs/s"))
        print(f"enqueue from a script (before the {workers}-thread drains):")
        print(line("enqueues/s", enq["plain"], enq["ours"], "/s"))
        sys.stdout.flush()
    if not args.skip_latency:
        print(f"\nenqueue-to-start latency, a job every 20 ms after {args.idle:g}s idle, "
              "1 worker thread:")
        plain = [latency(System("plain", work, 1, args.url), args.idle)
                 for _ in range(args.rounds)]
        ours = [latency(System("ours", work, 1, args.url), args.idle)
                for _ in range(args.rounds)]
        for i, label in enumerate(("first job after idle (ms)", "p50 (ms)", "p99 (ms)")):
            print(line(label, statistics.median(p[i] for p in plain),
                       statistics.median(o[i] for o in ours), "ms", higher_is_better=False))
    if args.memory:
        memory(args.url)


if __name__ == "__main__":
    main()
