"""Where a drain's claim commits write: WAL frames per claim, by table and index.

    .venv/bin/python bench/claim_pages.py [--jobs 20000] [--claim 64]
        [--backlogs bulk,single,interleaved,clustered]

Drains ``--jobs`` jobs spread over bench_flow.py's 4 queues from this process,
as a worker at full speed does (each claim of ``--claim`` jobs, taken ahead as
a worker of short jobs takes them, also completes the jobs of the claim before
it, in one commit), with the WAL never checkpointed; then reads the WAL: each
frame names the page it writes, and SQLite's ``dbstat`` names the table or index
that owns the page (:mod:`bench.wal_pages`). Three configurations: no
``[queues]``, bench_flow.py's limits configured but not binding (weights
4:3:2:1, a concurrency and a rate limit), and the same limits with equal
weights. Counted, not timed: the load of the machine does not change the figures.

What it shows: with unequal weights the queues are drained at different
speeds, so when the queues' rows are interleaved the rows one claim takes lie
in as many places of the table as there are queues, where a claim in plain
order takes neighbouring rows; the pages written per claim follow. Jobs over
queues of unequal weights are therefore written queue by queue
(:func:`runner.flow.unequal_weights`). With equal weights the same limits
write about what no limits write.

Backlogs: ``bulk`` as ``enqueue_many`` writes it (each batch of 1,000 queue by
queue under unequal weights), ``single`` one enqueue per job, moved out of the
intake at once (queue by queue under unequal weights), ``interleaved``, the
queues' rows interleaved one by one (what the intake's moves wrote before they
were grouped, and what moves of a job or two each still write), and
``clustered``, every queue's rows together.
Beside the frames, the CPU time of each drain loop per job (process time,
checkpoints left out as the WAL is kept whole): a figure of this run, moved by
the load of the machine, unlike the frames.
"""

from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_flow import EQUAL_WEIGHTS, NOT_BINDING, QUEUES, Run  # noqa: E402
from bench.wal_pages import owners, read_wal  # noqa: E402


def drain(work: Path, name: str, queues: str, jobs: int, want: int, backlog: str) -> None:
    from runner.flow import FlowLimits
    from runner.runner_huey import RunnerHuey
    from runner.settings_loader import load_settings
    from runner.store.job_rows import Ack, NewJob
    from runner.store.job_storage import grouped
    from runner.store.sqlite import SqliteStore
    from runner.store.sqlite.db import open_database
    from runner.store.sqlite.schema import prepare_database
    from runner.store.sqlite.transitions import intake

    run = Run(work, name, queues)
    settings = load_settings(run.settings, environ={})
    db = open_database(settings.database_path, settings.database)
    prepare_database(db)
    store = SqliteStore(db)
    now = time.time()
    # About the size of bench_flow.py's jobs (a pickled call of flow_noop).
    rows = [NewJob(f"j{n:07d}", "flow_noop", QUEUES[n % len(QUEUES)], 0, b"x" * 300, None, 1,
                   now, fresh=True) for n in range(jobs)]
    weights = {name: q.weight for name, q in settings.queues.items()}
    if backlog == "single":  # one enqueue per job, moved out of the intake at once
        store.set_queue_weights(weights)
        for job in rows:
            statement = intake.insert(job, now)
            assert statement is not None
            db.write_one(*statement)
        store.absorb_intake()
    else:
        if backlog == "clustered":
            rows.sort(key=lambda j: j.queue)
        for start in range(0, jobs, 1000):  # batches as enqueue_many writes them
            batch = rows[start:start + 1000]
            store.enqueue(grouped(batch, weights) if backlog == "bulk" else batch, now=now)
    limits = RunnerHuey("claim-pages").task_registry.flow_limits(settings)
    db.outside_transaction(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
    # On the connection every write of the process runs on (no checkpoint at commit).
    db.deferred_checkpoints = True
    running: list[str] = []
    labels: dict[str, tuple[str, str]] = {}
    claimed = 0
    seen: set[str] = set()
    cpu = time.process_time()
    while True:
        at = time.time()
        acks = [Ack(job_id, 1, at, at) for job_id in running]
        result = store.claim(now=at, owner="bench", lease_seconds=60, want=want, acks=acks,
                             labels=labels, limits=limits if queues else FlowLimits(),
                             ahead=True)  # as a worker of short jobs claims
        labels.update(result.labels)
        running = [c.id for c in result.claimed]
        seen.update(running)
        claimed += len(running)
        if not running:
            break
    cpu = time.process_time() - cpu
    if claimed != jobs or len(seen) != jobs:
        raise SystemExit(f"{name}: {claimed} claims of {len(seen)} distinct jobs, not each "
                         f"of {jobs} once")
    commits = read_wal(Path(f"{settings.database_path}-wal"))
    names = owners(Path(settings.database_path))
    by_name: collections.Counter[str] = collections.Counter()
    for pages in commits:
        by_name.update(names.get(page, "other") for page in pages)
    n = len(commits) or 1
    print(f"{name}, {backlog} backlog: {claimed} jobs in {len(commits)} claim commits, "
          f"{sum(map(len, commits)) / n:.1f} WAL frames per commit, "
          f"{cpu / max(claimed, 1) * 1e6:.1f} us CPU per job")
    for table, count in by_name.most_common():
        if count / n >= 0.05:
            print(f"    {count / n:6.2f}  {table}")
    db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--claim", type=int, default=64,
                        help="jobs per claim (a worker claims up to 64 while jobs are short)")
    parser.add_argument("--backlogs", default="bulk,single,interleaved,clustered",
                        help="comma-separated: bulk, single, interleaved, clustered")
    args = parser.parse_args()
    backlogs = args.backlogs.split(",")
    if unknown := set(backlogs) - {"bulk", "single", "interleaved", "clustered"}:
        parser.error(f"unknown backlog {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="claim-pages-"))
    for backlog in backlogs:
        for name, queues in (("none", ""), ("limits", NOT_BINDING),
                             ("equal-weights", EQUAL_WEIGHTS)):
            drain(work, name, queues, args.jobs, args.claim, backlog)


if __name__ == "__main__":
    main()
