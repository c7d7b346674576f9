"""Flow control: what limits cost when they do not bind, and how exact a binding rate is.

    .venv/bin/python bench/bench_flow.py [--jobs 20000] [--rounds 5] [--seconds 10]
        [--parts drain,rate,claim] [--backlog bulk,single]

1. Drain throughput of ``--jobs`` pre-enqueued no-op jobs spread over 4 queues,
   one ``run.py`` with the default 10 threads, with limits configured but not
   binding (weights 4:3:2:1, a concurrency limit of 500 on one queue, a rate
   limit of 100,000/s on another) against the same drain with no ``[queues]``
   at all, and with the same limits at equal weights (what the limits' own
   work costs, apart from the order unequal weights drain in); rounds
   A B C C B A, medians, after one untimed warm-up drain of each. Twice: the
   jobs enqueued with ``enqueue_many`` (each batch over queues of unequal
   weights is written queue by queue), and one enqueue per job while no worker
   runs (the intake, moved into the jobs table at once by the worker's first
   transaction: queue by queue under unequal weights, else one by one in turn).
   Each drain starts with the disk quiet (the enqueue's and the earlier
   rounds' writes flushed, the earlier rounds' files deleted), so neither
   side pays for the other's writeback. Beside the throughput, the worker's
   CPU time per job while the jobs ran, which other tenants of a shared
   machine move less. Target: limits cost <= 10%.
2. A binding rate: jobs of one queue limited to ``--rate`` starts a second,
   drained by two ``run.py`` processes for ``--seconds``; the measured rate
   (starts after the first, over the time since it) against the setting.
   Target: within +-5%.
3. One claim of 16 jobs among 100,000 waiting (4 queues, 3 priorities), with
   the limits of 1. and without: milliseconds per claim, in this process.

Every drained job must have run exactly once by what the task recorded.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (  # noqa: E402
    cpu_seconds,
    line,
    python,
    read_record,
    spawn,
    stop,
    wait_until,
)

SETTINGS = """
[runner]
database = "{db}"
imports = ["bench.flow_tasks"]
[worker]
queue_size = 0
log_level = "INFO"
{queues}
"""

NOT_BINDING = """
[queues.q0]
weight = 4
[queues.q1]
weight = 3
concurrency = 500
[queues.q2]
weight = 2
rate_limit = "100000/s burst 1000"
[queues.q3]
weight = 1
"""

#: The same limits with every weight 1: the queues drain side by side, so what
#: this costs is the limits' own work, and the rest of the cost of NOT_BINDING is
#: its weights' order (see bench/claim_pages.py).
EQUAL_WEIGHTS = "\n".join("weight = 1" if line.startswith("weight") else line
                          for line in NOT_BINDING.splitlines())

QUEUES = ("q0", "q1", "q2", "q3")


class Run:
    """One database, its settings and the consumers started on it."""

    def __init__(self, work: Path, name: str, queues: str) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work))
        self.record = self.dir / "record.txt"
        self.settings = self.dir / "settings.toml"
        self.settings.write_text(SETTINGS.format(db=self.dir / "jobs.db", queues=queues))
        self.env = {"BENCH_RECORD": str(self.record), "RUNNER_SETTINGS": str(self.settings)}

    def enqueue(self, count: int, queues: tuple[str, ...], backlog: str = "bulk") -> None:
        """``count`` jobs over ``queues`` in turn: with ``enqueue_many`` ("bulk"), or one
        enqueue per job ("single": through the intake, see the module docstring)."""
        write = ("get_huey().enqueue_many(calls)\n" if backlog == "bulk" else
                 "for call in calls:\n    get_huey().enqueue(call)\n")
        script = ("import sys\n"
                  "from runner import get_huey\n"
                  "from bench.flow_tasks import flow_noop\n"
                  "calls = []\n"
                  f"for n in range({count}):\n"
                  "    call = flow_noop.s(n)\n"
                  f"    call.queue = {queues!r}[n % {len(queues)}]\n"
                  "    calls.append(call)\n" + write)
        proc = spawn([python(), "-c", script], self.env, self.dir, self.dir / "enqueue.log")
        if proc.wait() != 0:
            raise SystemExit((self.dir / "enqueue.log").read_text())

    def consumer(self):  # noqa: ANN201
        root = Path(__file__).resolve().parent.parent
        return spawn([python(), str(root / "run.py")], self.env, self.dir,
                     self.dir / f"consumer-{time.monotonic_ns()}.log")

    def records(self) -> list[tuple[int, float]]:
        return read_record(self.record)


def drain(work: Path, name: str, queues: str, jobs: int,
          backlog: str = "bulk") -> tuple[float, float]:
    """(jobs/s from the first start to the last, the worker's CPU microseconds per job
    over the same span)."""
    run = Run(work, name, queues)
    run.enqueue(jobs, QUEUES, backlog)
    os.sync()  # the enqueue's writes reach the disk now, not during the drain
    proc = run.consumer()
    # CPU is read once jobs run (start-up and imports left out) and once all have run;
    # it moves less than wall time when other tenants share the machine. The end is
    # polled as seldom as before: each look parses the whole record, on the same 2
    # cores as the worker (an idle worker spends next to no CPU meanwhile).
    wait_until(lambda: bool(run.records()), timeout=120, interval=0.002)
    cpu_start, done_before = cpu_seconds(proc.pid), len(run.records())
    ok = wait_until(lambda: len(run.records()) >= jobs, timeout=600, interval=0.2)
    cpu = cpu_seconds(proc.pid) - cpu_start
    stop(proc)
    ids = sorted(n for n, _ in run.records())
    if not ok or ids != list(range(jobs)):
        raise SystemExit(f"{name}: expected every id exactly once, got {len(ids)} records, "
                         f"{len(set(ids))} distinct")
    times = sorted(at for _, at in run.records())
    shutil.rmtree(run.dir, ignore_errors=True)  # nor is a finished round's file written back
    return (jobs - 1) / (times[-1] - times[0]), cpu / max(1, jobs - done_before) * 1e6


def binding_rate(work: Path, rate: float, seconds: float) -> tuple[float, int]:
    """(measured starts/s, attempts other than the first) under ``rate`` for ``seconds``."""
    run = Run(work, f"rate{rate:g}", f'[queues.limited]\nrate_limit = "{rate:g}/s"\n')
    run.enqueue(int(rate * seconds * 1.5) + 50, ("limited",))
    procs = [run.consumer() for _ in range(2)]
    wait_until(lambda: len(run.records()) >= 2 and
               max(at for _, at in run.records()) - min(at for _, at in run.records())
               >= seconds + 0.5, timeout=seconds * 4 + 30, interval=0.1)
    for proc in procs:
        stop(proc)
    times = sorted(at for _, at in run.records())
    window = [t for t in times if t < times[0] + seconds]
    ids = [n for n, _ in run.records()]
    return (len(window) - 1) / (window[-1] - times[0]), len(ids) - len(set(ids))


def claim_cost(work: Path, waiting: int = 100_000, claims: int = 300) -> tuple[float, float]:
    """(ms per claim without limits, with the non-binding limits) among ``waiting`` jobs."""
    from runner.flow import FlowLimits
    from runner.runner_huey import RunnerHuey
    from runner.settings_loader import load_settings
    from runner.store.job_rows import NewJob
    from runner.store.sqlite import SqliteStore
    from runner.store.sqlite.db import open_database
    from runner.store.sqlite.schema import prepare_database

    run = Run(work, "claim", NOT_BINDING)
    settings = load_settings(run.settings, environ={})
    db = open_database(settings.database_path, settings.database)
    prepare_database(db)
    store = SqliteStore(db)
    now = time.time()
    rows = [NewJob(f"j{n:07d}", "flow_noop", QUEUES[n % 4], n % 3, b"x", None, 1,
                   now - waiting + n) for n in range(waiting)]
    for start in range(0, waiting, 5000):
        store.enqueue(rows[start:start + 5000], now=now)
    limited = RunnerHuey("bench-claim").task_registry.flow_limits(settings)
    costs = {}
    for name, limits in (("plain", None), ("limits", limited)):
        taken: list[str] = []
        per_claim = []
        for _ in range(claims):
            started = time.perf_counter()
            result = store.claim(now=now, owner="bench", lease_seconds=60, want=16,
                                 limits=limits if limits is not None else FlowLimits())
            per_claim.append(time.perf_counter() - started)
            taken += [c.id for c in result.claimed]
            if len(taken) >= 160:  # keep the running set a worker's size: finish them
                from runner.store.job_rows import Ack
                store.complete([Ack(job_id, 1, now, now) for job_id in taken])
                taken = []
        costs[name] = 1000 * statistics.median(per_claim)
    db.close()
    return costs["plain"], costs["limits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rates", default="20,200")
    parser.add_argument("--backlog", default="bulk,single",
                        help="how the drained jobs are enqueued: bulk (enqueue_many), "
                        "single (one enqueue each), or both")
    parser.add_argument("--parts", default="drain,rate,claim",
                        help="which measures to run, of drain, rate and claim")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    print(f"flow benchmark: {args.jobs} no-op jobs over 4 queues, 1 worker (10 threads), "
          f"{args.rounds} rounds A B C C B A (medians), work dir {work}; load {os.getloadavg()}")
    if "drain" in parts:
        for backlog in args.backlog.split(","):
            measure_drain(work, args.jobs, args.rounds, backlog)
    if "rate" in parts:
        measure_rates(work, args.rates, args.seconds)
    if "claim" in parts:
        plain_ms, limits_ms = claim_cost(work)
        print("one claim of 16 among 100,000 waiting jobs (median of 300):")
        print(line("ms per claim", plain_ms, limits_ms, "ms", higher_is_better=False))
    print(f"load after: {os.getloadavg()}")


def measure_drain(work: Path, jobs: int, rounds: int, backlog: str) -> None:
    configs = {"none": "", "limits": NOT_BINDING, "equal": EQUAL_WEIGHTS}
    runs: dict[str, list[float]] = {name: [] for name in configs}
    cpu: dict[str, list[float]] = {name: [] for name in configs}
    # Untimed: the first drain of each side pays for cold files and imports.
    for name, queues in configs.items():
        drain(work, name, queues, min(jobs, 5000), backlog)
    for n in range(rounds):
        # A B C, then C B A: a drift of the machine within a round favours no side.
        order = list(configs.items()) if n % 2 == 0 else list(configs.items())[::-1]
        for name, queues in order:
            rate, us = drain(work, name, queues, jobs, backlog)
            runs[name].append(rate)
            cpu[name].append(us)
    plain = statistics.median(runs["none"])
    print(f"drain with limits configured but not binding (plain = no [queues]), backlog "
          f"written {'by enqueue_many' if backlog == 'bulk' else 'one enqueue per job'}:")
    print(line("jobs/s", plain, statistics.median(runs["limits"]), "jobs/s"))
    for name, values in runs.items():
        middle = statistics.median(values)
        print(f"  {name:<7} rounds {[round(r) for r in values]}; median {middle:.0f}, "
              f"spread {min(values):.0f}-{max(values):.0f} "
              f"({(max(values) - min(values)) / middle:.0%} of the median)")
    for name, what in (("limits", "limits (weights 4:3:2:1)"),
                       ("equal", "the same limits at equal weights")):
        paired = statistics.median(b / a for a, b in zip(runs["none"], runs[name], strict=True))
        print(f"  cost of {what}: medians {1 - statistics.median(runs[name]) / plain:+.1%}; "
              f"median of the paired rounds {1 - paired:+.1%}")
    base = statistics.median(cpu["none"])
    print("  worker CPU per job (us, user and system, while jobs ran): " + "; ".join(
        f"{name} {statistics.median(values):.1f} "
        f"({statistics.median(values) / base - 1:+.1%})" for name, values in cpu.items()))
    sys.stdout.flush()


def measure_rates(work: Path, rates: str, seconds: float) -> None:
    print(f"binding rate, 2 worker processes, {seconds:g} s:")
    for text in rates.split(","):
        rate = float(text)
        measured, repeated = binding_rate(work, rate, seconds)
        print(f"  setting {rate:g}/s: measured {measured:.2f}/s ({measured / rate - 1:+.2%}); "
              f"jobs run twice: {repeated}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
