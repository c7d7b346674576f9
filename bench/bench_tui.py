"""Dashboard benchmark: ``python bench/bench_tui.py [--jobs N] [--db PATH] [--reuse]``.

On a database seeded with a million jobs (see :mod:`bench.seed_dashboard`) it
measures, headless:

1. time to first full render of Overview and of Jobs (from starting the app to
   the first poll shown on that screen);
2. refresh time per screen: the poll thread's read time and the whole cycle
   (``ctrl+r`` to rows on screen), median and worst of ``--refreshes``;
3. the drain throughput of a ``run.py`` worker emptying ``--drain`` no-op jobs
   into its own queue on that same database, alternately without and with a
   dashboard process refreshing every second beside it.

Targets: first render <= 1 s, refresh <= 100 ms, throughput drop <= 5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import python, read_record, spawn, stop, wait_until  # noqa: E402

SCREENS = ["overview", "jobs", "failures", "schedules", "events", "logs"]
WORKER_SETTINGS = """
[runner]
database = "{db}"
imports = ["bench.core_tasks"]
[worker]
max_concurrent_tasks = 4
queue_size = 0
queues = ["bench"]
log_level = "WARNING"
[database]
synchronous = "NORMAL"
[tasks.runner_noop]
queue = "bench"
"""


async def _wait_poll(app, pilot, since: int, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while app.polls <= since:
        if time.monotonic() > deadline:
            raise SystemExit("no poll within the deadline")
        await app.workers.wait_for_complete()
        await pilot.pause()


def measure_render(db: Path, refreshes: int) -> dict[str, object]:
    """First render times and per-screen refresh times, headless."""
    from tui.app import make_app

    result: dict[str, object] = {}

    async def run() -> None:
        started = time.perf_counter()
        app = make_app(db=db, refresh=3600)
        async with app.run_test(size=(160, 50)) as pilot:
            await _wait_poll(app, pilot, 0)
            result["first_overview"] = time.perf_counter() - started
            mark = time.perf_counter()
            before = app.polls
            await pilot.press("2")
            await _wait_poll(app, pilot, before)
            result["first_jobs_after_switch"] = time.perf_counter() - mark
            for number, mode in enumerate(SCREENS, 1):
                await pilot.press(str(number))
                await _wait_poll(app, pilot, app.polls - 1)
                totals, reads, shows = [], [], []
                for _ in range(refreshes):
                    before = app.polls
                    await pilot.press("ctrl+r")
                    await _wait_poll(app, pilot, before)
                    while len(app.timings) < app.polls:  # painted too
                        await pilot.pause()
                    read, show = app.timings[-1]
                    reads.append(read)
                    shows.append(show)
                    totals.append(read + show)
                result[mode] = (statistics.median(totals), max(totals), statistics.median(reads),
                                statistics.median(shows))

    asyncio.run(run())
    started = time.perf_counter()

    async def jobs_first() -> None:
        from tui.app import DashboardApp

        app = make_app(db=db, refresh=3600)
        DashboardApp.DEFAULT_MODE = "jobs"
        try:
            async with app.run_test(size=(160, 50)) as pilot:
                await _wait_poll(app, pilot, 0)
                result["first_jobs"] = time.perf_counter() - started
        finally:
            DashboardApp.DEFAULT_MODE = "overview"

    asyncio.run(jobs_first())
    return result


def run_dashboard(db: Path, stop_file: Path, stats: Path) -> None:
    """Headless dashboard refreshing every second, another screen every 10 s, to ``stop_file``."""
    from tui.app import make_app

    async def run() -> None:
        app = make_app(db=db, refresh=1.0)
        async with app.run_test(size=(160, 50)) as pilot:
            turn = 0
            while not stop_file.exists():
                await pilot.press(str(turn % 3 + 1))  # overview, jobs, failures
                turn += 1
                for _ in range(50):  # a new screen every 10 s, as someone watching
                    await asyncio.sleep(0.2)
            seconds = [read + show for read, show in app.timings]
            stats.write_text(json.dumps({"polls": app.polls, "seconds": seconds}))

    asyncio.run(run())


def drain_rate(work: Path, db: Path, jobs: int, *, dashboard: bool, round_no: int) -> float:
    """Jobs/s of one worker draining ``jobs`` no-op jobs, with or without a dashboard."""
    where = work / f"round-{round_no}-{'with' if dashboard else 'without'}"
    where.mkdir()
    settings = where / "settings.toml"
    settings.write_text(WORKER_SETTINGS.format(db=db))
    record = where / "record.txt"
    env = {"BENCH_RECORD": str(record), "BENCH_HUEY_DB": str(where / "h.db")}
    enqueue = spawn([python(), "-m", "bench.enqueue", "ours", str(jobs), "--settings",
                     str(settings)], env, where, where / "enqueue.log")
    enqueue.wait()
    watcher = None
    stop_file = where / "stop"
    if dashboard:
        watcher = spawn([python(), "-m", "bench.bench_tui", "--dashboard-only", "--db", str(db),
                         "--stop-file", str(stop_file), "--stats", str(where / "dash.json")],
                        {}, where, where / "dashboard.log")
        time.sleep(3)  # let it start and poll a couple of times before the worker starts
    worker = spawn([python(), str(Path(__file__).resolve().parent.parent / "run.py"),
                    "--settings", str(settings)], env, where, where / "worker.log")

    def done() -> bool:
        return len([r for r in read_record(record) if r[0] >= 0]) >= jobs

    began = time.monotonic()
    cpu_before = psutil.Process(watcher.pid).cpu_times() if watcher is not None else None
    ok = wait_until(done, timeout=600, interval=0.2)
    stop(worker)
    if watcher is not None and cpu_before is not None:
        cpu_after = psutil.Process(watcher.pid).cpu_times()
        busy = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        share = 100 * busy / (time.monotonic() - began)
        stop_file.touch()
        watcher.wait(30)
        stats = json.loads((where / "dash.json").read_text())
        polls = stats["seconds"]
        print(f"    dashboard beside it: {stats['polls']} polls, refresh median "
              f"{1000 * statistics.median(polls):.0f} ms, max {1000 * max(polls):.0f} ms, "
              f"{share:.0f}% of one core")
    if not ok:
        raise SystemExit(f"the worker did not drain {jobs} jobs; see {where}")
    times = sorted(at for n, at in read_record(record) if n >= 0)
    return (len(times) - 1) / (times[-1] - times[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--logs", type=int, default=100_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--reuse", action="store_true", help="keep an existing --db file")
    parser.add_argument("--refreshes", type=int, default=10)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-render", action="store_true",
                        help="only the throughput rounds")
    parser.add_argument("--dashboard-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stats", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dashboard_only:
        run_dashboard(args.db, args.stop_file, args.stats)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-tui-"))
    db = args.db or work / "jobs.db"
    if not (args.reuse and db.exists()):
        from bench.seed_dashboard import seed

        started = time.perf_counter()
        counts = seed(db, jobs=args.jobs, logs=args.logs)
        print(f"seeded {db}: {counts} in {time.perf_counter() - started:.0f}s")
    else:
        print(f"reusing {db}")
    from runner.readmodel.dashboard import has_table
    from runner.store.factory import store_for
    from runner.store.sqlite.db import Database

    if not has_table(store_for(Database(db, readonly=True)), "runner_log"):
        print("note: this schema has no runner_log table; log lines were not seeded")
    if not args.skip_render:
        report_render(measure_render(db, args.refreshes))
    drain_rounds(work, db, args.drain, args.rounds)


def report_render(render: dict[str, object]) -> None:
    print(f"first render: Overview {render['first_overview']:.2f}s, Jobs (started on it) "
          f"{render['first_jobs']:.2f}s, Jobs after pressing 2 "
          f"{render['first_jobs_after_switch']:.2f}s   (target <= 1 s)")
    print("refresh per screen = read in the poll thread + update and paint, ms "
          "(target <= 100 ms):")
    for mode in SCREENS:
        median, worst, read, show = render[mode]  # type: ignore[misc]
        print(f"  {mode:<10} median {1000 * median:6.1f}  max {1000 * worst:6.1f}   "
              f"(median read {1000 * read:5.1f}, update and paint {1000 * show:5.1f})")


def drain_rounds(work: Path, db: Path, jobs: int, rounds: int) -> None:
    print(f"drain throughput, one worker (4 threads), {jobs} no-op jobs per round:")
    without: list[float] = []
    with_: list[float] = []
    for round_no in range(rounds):
        # ABBA order, so a drift of the machine's load does not favour either side.
        for dashboard in ((False, True) if round_no % 2 == 0 else (True, False)):
            rate = drain_rate(work, db, jobs, dashboard=dashboard, round_no=round_no)
            (with_ if dashboard else without).append(rate)
            print(f"  round {round_no + 1} {'with' if dashboard else 'without'} dashboard: "
                  f"{rate:7.0f} jobs/s")
    a, b = statistics.median(without), statistics.median(with_)
    print(f"median without {a:.0f} jobs/s, with {b:.0f} jobs/s: drop {100 * (a - b) / a:+.1f}% "
          "(target <= 5 %)")


if __name__ == "__main__":
    sys.exit(main())
