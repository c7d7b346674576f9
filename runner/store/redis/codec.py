"""How rows travel to and from Redis: script arguments, hash fields, refusals.

Script arguments are flat strings; ``NULL`` (one NUL byte) stands for None.
Hash fields come back as bytes; an absent field is NULL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

from redis.exceptions import ResponseError

from runner.errors import DuplicateJob, InvalidAction
from runner.store.job_rows import Ack, NewJob, queue_full
from runner.store.rows import JobRow

NULL = b"\x00"
#: Separates queue and state in the ``qstate`` counts.
US = "\x1f"

Arg = bytes | str | int | float


def arg(value: object) -> Arg:
    """One script argument (None as NULL, booleans as 1/0, floats exactly)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, str, int)):
        return value
    return str(value)


_NIL = b"\xc0"
#: A msgpack array of the 15 fields of a job.
_JOB_ARRAY = bytes((0x90 | 15,))
#: msgpack string headers: fixstr under 32 bytes, str8 under 256.
_HEADERS = [bytes((0xA0 | n,)) for n in range(32)] + [b"\xd9" + bytes((n,))
                                                       for n in range(32, 256)]


def job_args(job: NewJob) -> list[Arg]:
    """A job as one argument: a msgpack array of its 15 fields in the scripts' order.

    Each field is a string (bytes as they are, numbers written exactly) or nil for
    NULL; the last one is ``run_at`` as the ready sets order it (``%020.6f``), which
    costs the client less to write than the script. Redis decodes it in C
    (``cmsgpack``), much cheaper than splitting fields in Lua.
    """
    run_at = float(job.run_at)
    unique_for = job.unique_for
    out = [_JOB_ARRAY]
    for value in (job.id, job.task, job.queue, b"%d" % job.priority, job.data, job.args,
                  b"%d" % job.max_attempts, repr(run_at), job.unique_key, job.event_id,
                  job.schedule, job.concurrency_key,
                  None if unique_for is None else repr(float(unique_for)),
                  ",".join(str(s) for s in job.unique_states) or None,
                  b"%020.6f" % run_at):
        if value is None:
            out.append(_NIL)
            continue
        raw = value if value.__class__ is bytes else str(value).encode()
        n = len(raw)
        if n < 256:
            out.append(_HEADERS[n])
        elif n < 65536:
            out.append(b"\xda" + n.to_bytes(2, "big"))
        else:
            out.append(b"\xdb" + n.to_bytes(4, "big"))
        out.append(raw)
    return [b"".join(out)]


def jobs_args(jobs: Sequence[NewJob]) -> list[Arg]:
    """A count, then each job's fields."""
    out: list[Arg] = [len(jobs)]
    for job in jobs:
        out += job_args(job)
    return out


def pairs_args(pairs: Sequence[tuple[str, bytes]]) -> list[Arg]:
    out: list[Arg] = [len(pairs)]
    for key, value in pairs:
        out += [key, value]
    return out


def acks_args(acks: Sequence[Ack]) -> list[Arg]:
    """A count, then each ack: id, attempt, started, finished, results, next steps."""
    out: list[Arg] = [len(acks)]
    for a in acks:
        out += [a.job_id, int(a.attempt), arg(a.started_at), arg(float(a.finished_at))]
        out += pairs_args(a.results)
        out += jobs_args(a.jobs)
    return out


def token() -> str:
    """A call's own token: a script that must not write twice when the client sends it
    again after a lost connection (its reply lost, not the command) knows it by it."""
    return os.urandom(8).hex()


def refusal(exc: ResponseError, where: str) -> Exception:
    """The runner's error for a script's refusal (``exc`` itself when it is not one)."""
    text = str(exc)
    if text.startswith("DUPLICATE "):
        _, by, value = text.split(" ", 2)
        return DuplicateJob(f"{where}: a job with {by} '{value}' exists; nothing was written",
                            by=by)
    if text.startswith("QUEUEFULL "):
        queue, waiting, size, room, adding = text[len("QUEUEFULL "):].split(US)
        refused = queue_full(queue, int(waiting), int(size), int(adding))
        refused.room = int(room)  # the script's own count
        return refused
    if text.startswith("INVALID "):
        return InvalidAction(text[len("INVALID "):])
    return exc


def text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def number(value: bytes | None) -> float | None:
    return None if value is None else float(value)


def integer(value: bytes | None, default: int = 0) -> int:
    return default if value is None else int(float(value))


_INTS = {"priority", "attempt", "max_attempts", "crashes", "failures", "requested"}
_FLOATS = {"run_at", "created_at", "started_at", "finished_at", "first_failed_at",
           "last_failed_at", "progress_done", "progress_total"}


def job_row(fields: Mapping[bytes, bytes]) -> JobRow:
    """A job hash as the row the CLI and the dashboard read."""
    values: dict[str, object] = {}
    for name in JobRow.__dataclass_fields__:
        raw = fields.get(name.encode())
        if name in _INTS:
            values[name] = integer(raw)
        elif name in _FLOATS:
            values[name] = number(raw)
        else:
            values[name] = text(raw)
    return JobRow(**values)  # type: ignore[arg-type]


def decoded(values: Iterable[bytes]) -> list[str]:
    return [v.decode() for v in values]
