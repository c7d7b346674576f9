"""Outcomes a stopping worker finished but could not write, kept beside its running file.

A drain lets the running jobs finish; when another process holds the database's
write lock past the worker's write deadline, their outcomes (completions with
their results and next steps, failures retrying or dead) cannot be committed
and the worker exits (75). Left to the running file alone, the next recovery
would see those attempts started and unsettled, charge each a crash and run it
again. So the outcomes go into ``<running file>.outcomes``, one JSON line each,
fsynced (and the directory with it) before the worker exits; the recovery that
finds the worker dead commits them first, in its own transaction, exactly as the
worker would have, and only what is still running after that is charged.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runner.store.job_rows import Ack, Failed, FailureInfo, NewJob

SUFFIX = ".outcomes"


def kept_path(running: Path) -> Path:
    """The file of the outcomes kept for the running file ``running``."""
    return running.with_name(running.name + SUFFIX)


def keep(running: Path, acks: Sequence[Ack], failures: Sequence[Failed] = ()) -> Path:
    """Write the outcomes (with any kept before) durably beside ``running``; the file."""
    path = kept_path(running)
    lines = [json.dumps(_to_json(o)) for o in (*read_kept(path), *acks, *failures)]
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, "".join(line + "\n" for line in lines).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself must survive a power loss too
    finally:
        os.close(directory)
    return path


def read_kept(path: Path) -> list[Ack | Failed]:
    """The outcomes kept in ``path`` (see :func:`kept_path`); none when there is no file.

    A line that does not read (a file cut short) is skipped: its job is recovered as
    any attempt its worker left running.
    """
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    outcomes: list[Ack | Failed] = []
    for line in text.splitlines():
        try:
            outcomes.append(_from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return outcomes


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _to_json(outcome: Ack | Failed) -> dict[str, Any]:
    row: dict[str, Any] = {
        "job_id": outcome.job_id, "attempt": outcome.attempt,
        "results": [[key, _bytes(value)] for key, value in outcome.results],
        "jobs": [{**dataclasses.asdict(job), "data": _bytes(job.data)} for job in outcome.jobs]}
    if isinstance(outcome, Ack):
        return {**row, "started_at": outcome.started_at, "finished_at": outcome.finished_at}
    return {**row, "failure": dataclasses.asdict(outcome.failure), "state": outcome.state,
            "worker": outcome.worker, "now": outcome.now, "reason": outcome.reason,
            "run_at": outcome.run_at,
            "data": None if outcome.data is None else _bytes(outcome.data)}


def _from_json(row: dict[str, Any]) -> Ack | Failed:
    results = tuple((str(key), base64.b64decode(value)) for key, value in row["results"])
    jobs = tuple(NewJob(**{**job, "data": base64.b64decode(job["data"]),
                           "unique_states": tuple(job["unique_states"])})
                 for job in row["jobs"])
    job_id, attempt = str(row["job_id"]), int(row["attempt"])
    if "failure" not in row:
        return Ack(job_id, attempt, row["started_at"], float(row["finished_at"]), results, jobs)
    data = row["data"]
    return Failed(job_id, attempt, FailureInfo(**row["failure"]), str(row["state"]),
                  row["worker"], float(row["now"]), row["reason"], row["run_at"],
                  None if data is None else base64.b64decode(data), results, jobs)
