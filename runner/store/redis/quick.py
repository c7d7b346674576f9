"""The quick enqueue on Redis: which jobs may take it, and its request in the protocol.

A task call makes its job's id (``NewJob.fresh``), so no job can hold it; a
fresh job that is due, has no unique key, event or schedule, and goes to a
queue no bound applies to has nothing to check. It is written with four plain
commands in one MULTI/EXEC: its hash (no rowid yet) and payload, an entry in
``inbox`` and the wake-up. The claim indexes the inbox in bulk (``absorb`` in
:mod:`runner.store.redis.lua_jobs`). Plain commands cost a fraction of a
script's calls, and the request is packed here in one formatting step rather
than by the client's generic encoder.
"""

from __future__ import annotations

from runner.store.job_rows import NewJob
from runner.store.rows import DISPATCH_TASK

#: Replies to :func:`push_request`: MULTI, 4 queued commands, EXEC.
REPLIES = 6

_HEAD = (b"*1\r\n$5\r\nMULTI\r\n"
         b"*%d\r\n$4\r\nHSET\r\n$%d\r\n%sjob:%s\r\n"
         b"$2\r\nid\r\n$%d\r\n%s\r\n$4\r\ntask\r\n$%d\r\n%s\r\n$5\r\nqueue\r\n$%d\r\n%s\r\n"
         b"$8\r\npriority\r\n$%d\r\n%s\r\n$12\r\nmax_attempts\r\n$%d\r\n%s\r\n"
         b"$6\r\nrun_at\r\n$%d\r\n%s\r\n$10\r\ncreated_at\r\n$%d\r\n%s\r\n"
         b"$7\r\nattempt\r\n$1\r\n0\r\n$7\r\ncrashes\r\n$1\r\n0\r\n$8\r\nfailures\r\n$1\r\n0\r\n"
         b"$5\r\nstate\r\n$9\r\navailable\r\n")
_TAIL = (b"*3\r\n$3\r\nSET\r\n$%d\r\n%sdata:%s\r\n$%d\r\n%s\r\n"
         b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%sinbox\r\n$%d\r\n%s\r\n"
         b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%swake\r\n$1\r\n1\r\n"
         b"*1\r\n$4\r\nEXEC\r\n")
#: The HSET's arguments without the optional fields: HSET, key, 11 pairs.
_HSET_ARGS = 2 + 2 * 11


def quick(job: NewJob, now: float) -> bool:
    """Whether ``job`` may take the quick enqueue (its queue's bound aside)."""
    return (job.fresh and job.unique_key is None and job.event_id is None
            and job.schedule is None and job.run_at <= now and job.task != DISPATCH_TASK)


def push_request(prefix: bytes, job: NewJob, now: float) -> bytes:
    """The MULTI/EXEC that writes ``job`` quickly (keys under ``prefix``, ending in ``:``)."""
    ident, task, q = job.id.encode(), job.task.encode(), job.queue.encode()
    run_at = float(job.run_at)
    at, created = repr(run_at).encode(), repr(float(now)).encode()
    priority, attempts = b"%d" % job.priority, b"%d" % job.max_attempts
    extra, count = b"", _HSET_ARGS
    if job.args is not None:
        value = job.args.encode()
        extra = b"$4\r\nargs\r\n$%d\r\n%s\r\n" % (len(value), value)
        count += 2
    if job.concurrency_key is not None:
        value = job.concurrency_key.encode()
        extra += b"$15\r\nconcurrency_key\r\n$%d\r\n%s\r\n" % (len(value), value)
        count += 2
    entry = b"%s\x1f%s\x1f%020.6f\x1f%s\x1f%s\x1f%s" % (priority, at, run_at, task, ident, q)
    n = len(prefix)
    return b"".join((
        _HEAD % (count, n + 4 + len(ident), prefix, ident, len(ident), ident, len(task), task,
                 len(q), q, len(priority), priority, len(attempts), attempts, len(at), at,
                 len(created), created),
        extra,
        _TAIL % (n + 5 + len(ident), prefix, ident, len(job.data), job.data,
                 n + 5, prefix, len(entry), entry, n + 4, prefix)))
