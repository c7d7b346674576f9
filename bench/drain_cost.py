"""Where a drained no-op job's time goes: one worker process, counted rather than timed.

    .venv/bin/python bench/drain_cost.py [--root CHECKOUT] [--jobs 1000,3000]
        [--sync FULL] [--threads 1] [--callgrind] [--profile OUT.pstats]

Runs ``run.py`` of ``--root`` (default: this checkout, with its own
``.venv``) over pre-enqueued no-op jobs of ``bench.core_tasks`` (the core
benchmark's), stopped with SIGINT once every job recorded its start. Figures per
job come from two drains of different sizes (the difference, so start-up and
shutdown cancel out):

* SQL statements (by kind) and commits per job, from a trace callback on every
  SQLite connection of the worker (installed by a ``sitecustomize`` module
  on the worker's path, so any checkout can be measured unchanged);
* with ``--callgrind``: instructions per job under ``valgrind --tool=callgrind``
  (repeatable whatever the load of the machine), counted without the trace
  callback, which expands every statement's text with its parameters (a cost of
  its own that grows with the length of the statements: the statements are not
  counted then);
* with ``--profile``: a cProfile of the worker threads (``pstats`` file) for
  the larger drain.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("bench_flow", HERE / "bench" / "bench_flow.py")
assert _spec is not None and _spec.loader is not None
_bench_flow = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench_flow)
NOT_BINDING: str = _bench_flow.NOT_BINDING

SETTINGS = """
[runner]
database = "{db}"
imports = ["{tasks}"]
[worker]
max_concurrent_tasks = {threads}
queue_size = 0
log_level = "INFO"
[database]
synchronous = "{sync}"
{queues}
"""

#: ``--flow``: jobs spread over the four queues of bench_flow.py, with its limits
#: configured but not binding (``--flow limits``) or no ``[queues]`` (``--flow none``).
FLOW_ENQUEUE = ("import sys\n"
                "from runner import get_huey\n"
                "from bench.flow_tasks import flow_noop\n"
                "calls = []\n"
                "for n in range(int(sys.argv[1])):\n"
                "    call = flow_noop.s(n)\n"
                "    call.queue = ('q0', 'q1', 'q2', 'q3')[n % 4]\n"
                "    calls.append(call)\n"
                "if sys.argv[2] == 'bulk':\n"
                "    get_huey().enqueue_many(calls)\n"
                "else:\n"
                "    for call in calls:\n"
                "        get_huey().enqueue(call)\n")

SITECUSTOMIZE = r'''
import atexit, collections, json, os, sqlite3, threading
_out = os.environ.get("DRAIN_COST_TRACE")
_profile = os.environ.get("DRAIN_COST_PROFILE")
_claim = int(os.environ.get("DRAIN_COST_CLAIM") or 0)
if _claim:
    # Claims take a fixed number of jobs: the worker sizes them by how long attempts
    # take, which a slowed-down process (valgrind) would change.
    import importlib.abc, importlib.machinery, sys

    class _Patch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "runner.store.job_storage":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                module.JobStorage._claim_size = lambda self: _claim

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Patch())
if _out:
    _counts = collections.Counter()
    _lock = threading.Lock()
    _connect = sqlite3.connect
    _detail = bool(os.environ.get("DRAIN_COST_DETAIL"))

    def _kind(sql):
        text = sql.lstrip()
        if text.startswith("--"):
            return "trigger"
        head = text.split(None, 1)[0].upper() if text else ""
        return head

    import re
    _literal = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b|x'[0-9a-fA-F]*'")

    def _shape(sql):
        # Python reports a statement with its parameters bound (and again for each
        # trigger it fires): count shapes, not values.
        return _literal.sub("?", " ".join(sql.split()))

    def _trace(sql):
        with _lock:
            _counts[_kind(sql)] += 1
            _counts["(all)"] += 1
            if _detail:
                _counts["  " + _shape(sql)[:150]] += 1

    def connect(*args, **kwargs):
        conn = _connect(*args, **kwargs)
        conn.set_trace_callback(_trace)
        return conn

    sqlite3.connect = connect

    @atexit.register
    def _dump():
        with open(_out, "w") as fh:
            json.dump(dict(_counts), fh)
if _profile:
    import cProfile
    _profiles = []
    _run = threading.Thread.run

    def run(self):
        if not self.name.startswith("Worker"):
            return _run(self)
        profile = cProfile.Profile()
        _profiles.append(profile)
        profile.enable()
        try:
            return _run(self)
        finally:
            profile.disable()

    threading.Thread.run = run

    @atexit.register
    def _dump_profile():
        import pstats
        if _profiles:
            stats = pstats.Stats(_profiles[0])
            for p in _profiles[1:]:
                stats.add(p)
            stats.dump_stats(_profile)
'''


def records(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for _ in fh)


def drain(root: Path, work: Path, jobs: int, *, sync: str, threads: int, callgrind: bool,
          profile: str | None, flow: str = "", backlog: str = "bulk") -> dict[str, float]:
    run = Path(tempfile.mkdtemp(prefix=f"drain-{jobs}-", dir=work))
    settings = run / "settings.toml"
    queues = NOT_BINDING if flow == "limits" else ""
    settings.write_text(SETTINGS.format(db=run / "jobs.db", threads=threads, sync=sync,
                                        queues=queues,
                                        tasks="bench.flow_tasks" if flow else "bench.core_tasks"))
    hook = run / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    record = run / "record.txt"
    python = str(root / ".venv" / "bin" / "python")
    env = {**os.environ, "PYTHONPATH": f"{root}", "BENCH_RECORD": str(record),
           "BENCH_HUEY_DB": str(run / "h.db"), "RUNNER_SETTINGS": str(settings)}
    if flow:
        subprocess.run([python, "-c", FLOW_ENQUEUE, str(jobs), backlog], env=env, cwd=run,
                       check=True)
    else:
        subprocess.run([python, "-m", "bench.enqueue", "ours", str(jobs), "--settings",
                        str(settings)], env=env, cwd=run, check=True, stdout=subprocess.DEVNULL)
        jobs += 1  # the enqueue script's own first job, -1 (it opens the database)
    trace = run / "trace.json"
    env = {**env, "PYTHONPATH": f"{hook}:{root}"}
    if not callgrind:
        env["DRAIN_COST_TRACE"] = str(trace)
    if profile:
        env["DRAIN_COST_PROFILE"] = profile
    args = [python, str(root / "run.py"), "--settings", str(settings)]
    out = run / "callgrind.out"
    if callgrind:
        args = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                "--dump-instr=no", "--collect-jumps=no"] + args
    with (run / "worker.log").open("wb") as log:
        proc = subprocess.Popen(args, env=env, cwd=run, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 3600
    while records(record) < jobs:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"worker exited or timed out; see {run / 'worker.log'}")
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    proc.wait(600)
    ids = sorted(int(line.split()[0]) for line in record.read_text().splitlines())
    if ids != list(range(-1 if not flow else 0, jobs - (1 if not flow else 0))):
        raise SystemExit(f"expected every job exactly once, got {len(ids)} records, "
                         f"{len(set(ids))} distinct; see {run}")
    result: dict[str, float] = {} if callgrind else dict(json.loads(trace.read_text()))
    if callgrind:
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                result["instructions"] = int(line.split()[1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=HERE)
    parser.add_argument("--jobs", default="1000,3000")
    parser.add_argument("--sync", default="FULL")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--profile")
    parser.add_argument("--claim", type=int, default=64,
                        help="jobs per claim, fixed (0: the worker's own choice, which "
                             "follows attempt durations and so the slowdown of valgrind)")
    parser.add_argument("--flow", choices=["none", "limits"], default="",
                        help="drain bench_flow.py's four queues, without or with its limits")
    parser.add_argument("--backlog", choices=["bulk", "single"], default="bulk",
                        help="with --flow: the jobs written by enqueue_many (each batch queue "
                        "by queue), or one enqueue per job (through the intake)")
    parser.add_argument("--statements", action="store_true",
                        help="also count each statement's text (first 150 characters)")
    args = parser.parse_args()
    small, large = (int(n) for n in args.jobs.split(","))
    work = Path(tempfile.mkdtemp(prefix="drain-cost-"))
    if args.statements:
        os.environ["DRAIN_COST_DETAIL"] = "1"
    if args.claim:
        os.environ["DRAIN_COST_CLAIM"] = str(args.claim)
    a = drain(args.root.resolve(), work, small, sync=args.sync, threads=args.threads,
              callgrind=args.callgrind, profile=None, flow=args.flow, backlog=args.backlog)
    b = drain(args.root.resolve(), work, large, sync=args.sync, threads=args.threads,
              callgrind=args.callgrind, profile=args.profile, flow=args.flow,
              backlog=args.backlog)
    per = collections.OrderedDict(
        (k, (b.get(k, 0) - a.get(k, 0)) / (large - small))
        for k in sorted(set(a) | set(b), key=lambda k: -b.get(k, 0)))
    print(f"{args.root}: per job, drains of {small} and {large} jobs, {args.threads} "
          f"thread(s), {args.claim or 'adaptive'} per claim, synchronous={args.sync}"
          f"{', flow ' + args.flow + ', ' + args.backlog + ' backlog' if args.flow else ''}; "
          f"load {os.getloadavg()[0]:.2f}")
    for k, v in per.items():
        if abs(v) >= 0.005:
            print(f"  {k:<14} {v:12.3f}")


if __name__ == "__main__":
    main()
