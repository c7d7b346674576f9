"""The quick enqueue on Redis: which jobs may take it, and its request in the protocol.

A task call makes its job's id (``NewJob.fresh``), so no job can hold it; a
fresh job that is due, has no unique key, event or schedule, and goes to a
queue no bound applies to has nothing to check. It is written as one ``RPUSH``
of an entry that carries the whole job onto ``inbox``, as plain huey's one
``LPUSH``: the claim (or any script or reader, before it looks) writes its hash
and payload and indexes it, in bulk (``absorb`` in
:mod:`runner.store.redis.lua_jobs`). The request is packed here in one
formatting step rather than by the client's generic encoder.

The wake-up is published only by the push that finds the inbox empty (its
reply, the list's length, is 1): while the inbox holds jobs, the push that
started it has woken the workers, and the claim that takes a part of it looks
again at once, so a burst costs one publish rather than one per job.
"""

from __future__ import annotations

from runner.store.job_rows import NewJob
from runner.store.rows import DISPATCH_TASK

_PUSH = b"*3\r\n$5\r\nRPUSH\r\n$%d\r\n%sinbox\r\n$%d\r\n%s\r\n"
_ENTRY = b"%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s%s%s"
_WAKE = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%swake\r\n$1\r\n1\r\n"


#: Largest payload of the quick enqueue: a claim reads up to ``ABSORB`` entries in one
#: script, so larger payloads are written by the scripted enqueue, one job at a time.
MAX_DATA = 4096


def quick(job: NewJob, now: float) -> bool:
    """Whether ``job`` may take the quick enqueue (its queue's bound aside)."""
    return (job.fresh and job.unique_key is None and job.event_id is None
            and job.schedule is None and job.run_at <= now and job.task != DISPATCH_TASK
            and len(job.data) <= MAX_DATA)


def push_request(prefix: bytes, job: NewJob, now: float) -> bytes:
    """The RPUSH that writes ``job`` quickly (keys under ``prefix``, ending in ``:``).

    The entry is ``priority, run_at, created_at, max_attempts, task, id, queue`` and
    the byte lengths of ``args`` and ``concurrency_key`` (empty: NULL), separated by
    US, then ``args``, ``concurrency_key`` and the payload, end to end (any bytes).
    """
    ident, task, q = job.id.encode(), job.task.encode(), job.queue.encode()
    at, created = repr(float(job.run_at)).encode(), repr(float(now)).encode()
    args = b"" if job.args is None else job.args.encode()
    key = b"" if job.concurrency_key is None else job.concurrency_key.encode()
    nargs = b"" if job.args is None else b"%d" % len(args)
    nkey = b"" if job.concurrency_key is None else b"%d" % len(key)
    entry = _ENTRY % (b"%d" % job.priority, at, created, b"%d" % job.max_attempts, task,
                      ident, q, nargs, nkey, args, key, job.data)
    return _PUSH % (len(prefix) + 5, prefix, len(entry), entry)


def wake_request(prefix: bytes) -> bytes:
    """The PUBLISH of the wake-up (after a push that found the inbox empty)."""
    return _WAKE % (len(prefix) + 4, prefix)
