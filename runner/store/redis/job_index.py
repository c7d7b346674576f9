"""Walking the job indexes on Redis: the reads every other part builds on.

Listings walk an index by rowid (``jobs``, ``state:<s>``, ``qjobs:<queue>``,
``tjobs:<task>``, ``evjobs:<e>`` or a worker's in-flight set), the smallest one the
filter names, and read the job hashes in pipelined chunks, filtering the rest of a
:class:`JobFilter` here; counts with no filter but a state or queue read the kept
counts. The listings by queue and by task are brought up to date by the readers
that use them (``index_jobs``), so an enqueue does not pay for them.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator, Sequence
from dataclasses import replace

from runner.errors import JobNotFound
from runner.store.redis.codec import US, decoded, integer, job_row, text
from runner.store.redis.connection import RedisBase
from runner.store.rows import JobFilter, JobRow
from runner.store.states import FAILED, WAITING, JobState

_CHUNK = 500

#: Upper case ASCII letters to lower case: a search ignores their case (SQLite's LIKE does).
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

#: Jobs one ``index_jobs`` call adds to the listings by queue and task (a first read
#: after many jobs takes several calls, none holding Redis long).
_INDEX_STEP = 2000


def _states_of(filters: JobFilter) -> tuple[str, ...] | None:
    if not filters.state:
        return None
    if filters.state == "waiting":
        return tuple(s.value for s in WAITING)
    if filters.state == "failed":
        return tuple(s.value for s in FAILED)
    return (filters.state,)


def _matches(row: JobRow, filters: JobFilter, states: tuple[str, ...] | None) -> bool:
    if states is not None and row.state not in states:
        return False
    for name in ("queue", "task", "event_id"):
        wanted = getattr(filters, name)
        if wanted and getattr(row, name) != wanted:
            return False
    if filters.worker and row.lease_owner != filters.worker:
        return False
    if filters.error is not None and (row.error_type, row.error_message) != filters.error:
        return False
    if filters.error_text:
        needle = filters.error_text.casefold()
        if not any(needle in (v or "").casefold() for v in (row.error_type, row.error_message)):
            return False
    if filters.text:
        needle = filters.text.casefold()
        return any(needle in (v or "").casefold()
                   for v in (row.id, row.task, row.args, row.error_message))
    return True


class Partial:
    """Some fields of a job's hash, as text (None: absent), read where a whole
    :class:`JobRow` each would cost more than what is done with them."""

    def __init__(self, names: Sequence[str], values: Sequence[bytes | None]) -> None:
        for name, value in zip(names, values, strict=True):
            setattr(self, name, None if value is None else value.decode())

    def __getattr__(self, name: str) -> str | None:
        return None  # a field not read


class JobIndex(RedisBase):
    """Index walks and pipelined hash reads shared by the parts of :class:`RedisStore`."""

    def _index_keys(self, filters: JobFilter, states: tuple[str, ...] | None) -> list[str]:
        """The smallest index holding every job of ``filters`` in ``states`` (None: any)."""
        choices = []
        if filters.event_id:
            choices.append([self.k("evjobs", filters.event_id)])
        if filters.queue or filters.task:
            self._list_by_queue_and_task()
            if filters.queue:
                choices.append([self.k("qjobs", filters.queue)])
            if filters.task:
                choices.append([self.k("tjobs", filters.task)])
        if states is not None:
            choices.append([self.k("state", s) for s in states])
        if len(choices) < 2:
            return choices[0] if choices else [self.k("jobs")]
        pipe = self.r.pipeline(transaction=False)
        for keys in choices:
            for key in keys:
                pipe.zcard(key)
        counts = [int(n) for n in pipe.execute()]
        sizes, at = [], 0
        for keys in choices:
            sizes.append(sum(counts[at:at + len(keys)]))
            at += len(keys)
        return choices[sizes.index(min(sizes))]

    def _list_by_queue_and_task(self) -> None:
        """Bring ``qjobs:<queue>`` and ``tjobs:<task>`` up to the newest job."""
        while True:
            added = self.run("index_jobs", _INDEX_STEP)
            if int(added) < _INDEX_STEP:  # type: ignore[call-overload]
                return

    def _ids(self, filters: JobFilter, *, newest_first: bool = True, after: int | None = None,
             states: tuple[str, ...] | None = None) -> Iterator[tuple[int, str]]:
        """(rowid, id) of the candidates of ``filters`` in ``states`` (None: any), by
        rowid, from past ``after`` on."""
        self._settle()
        if filters.worker and not filters.event_id:
            ids = decoded(self.r.smembers(self.k("inflight", filters.worker)))
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hget(self.k("job", i), "rowid")
            pairs = [(integer(r), i) for r, i in zip(pipe.execute(), ids, strict=True) if r]
            yield from sorted((p for p in pairs if after is None or (
                p[0] < after if newest_first else p[0] > after)), reverse=newest_first)
            return
        walks = [self._walk_index(key, newest_first, after)
                 for key in self._index_keys(filters, states)]
        yield from walks[0] if len(walks) == 1 else heapq.merge(*walks, reverse=newest_first)

    def _walk_index(self, key: str, newest_first: bool, after: int | None
              ) -> Iterator[tuple[int, str]]:
        """(rowid, id) of one index by rowid, from past ``after`` on, a chunk at a time.

        Each chunk is a range from the last rowid read, so a walk that starts deep
        in the index (a later page) costs what one from its start does.
        """
        bound = None if after is None else f"({after}"
        while True:
            if newest_first:
                chunk = self.r.zrevrangebyscore(key, bound or "+inf", "-inf", start=0,
                                                num=_CHUNK, withscores=True)
            else:
                chunk = self.r.zrangebyscore(key, bound or "-inf", "+inf", start=0,
                                             num=_CHUNK, withscores=True)
            for member, score in chunk:
                yield int(score), member.decode()
            if len(chunk) < _CHUNK:
                return
            bound = f"({int(chunk[-1][1])}"

    def _rows(self, filters: JobFilter | None, *, newest_first: bool = True,
              after: int | None = None, first: int = _CHUNK,
              states: Sequence[str] | None = None,
              fields: Sequence[str] | None = None) -> Iterator[tuple[int, JobRow]]:
        """(rowid, row) of the jobs of ``filters`` from past ``after`` on; the hashes are
        read ``first`` at a time at first (what a page needs), then in larger chunks.

        ``states`` (a bulk action's) stands for the filter's state when given; with
        ``fields``, only those of each hash are read, as :class:`Partial` rows (which
        must hold ``id`` and what the filter looks at).
        """
        chosen = filters or JobFilter()
        if states is not None:
            chosen = replace(chosen, state=None)
        within = _states_of(chosen) if states is None else tuple(str(s) for s in states)
        batch: list[tuple[int, str]] = []
        size = first
        needle = chosen.text.translate(_ASCII_LOWER) if chosen.text else None
        names = None if fields is None else list(fields)

        def flush() -> Iterator[tuple[int, JobRow]]:
            wanted = batch
            if needle is not None:  # Redis looks at the text: only what it finds is read
                found = set(decoded(self.run("match_text", needle,  # type: ignore[arg-type]
                                             *(i for _, i in batch))))
                wanted = [pair for pair in batch if pair[1] in found]
            for (rowid, _), found in zip(wanted, self._hashes(wanted, names), strict=True):
                if found:
                    row = job_row(found) if names is None else Partial(names, found)
                    if _matches(row, chosen, within):  # type: ignore[arg-type]
                        yield rowid, row  # type: ignore[misc]

        for pair in self._ids(chosen, newest_first=newest_first, after=after, states=within):
            batch.append(pair)
            if len(batch) >= size:
                yield from flush()
                batch, size = [], _CHUNK
        if batch:
            yield from flush()

    def _hashes(self, pairs: Sequence[tuple[int, str]],
                names: Sequence[str] | None) -> list:
        """The hashes of the jobs of ``pairs`` (rowid, id): whole (a dict each), or the
        values of ``names`` (a list each, in one script call); empty for a job gone."""
        if names is None:
            pipe = self.r.pipeline(transaction=False)
            for _, i in pairs:
                pipe.hgetall(self.k("job", i))
            return pipe.execute()
        return [values or [] for values in self.run(  # type: ignore[union-attr]
            "job_fields", US.join(i for _, i in pairs), *names)]

    def _plain(self, filters: JobFilter | None) -> bool:
        f = filters or JobFilter()
        return not (f.task or f.text or f.event_id or f.worker or f.error or f.error_text)

    def _lookup(self, index: str, ident: str) -> str | None:
        """The one id of ``index`` starting (4+ chars) or ending (6+ chars) with ``ident``."""
        self._settle()
        rows: list[bytes] = []
        escaped = "".join("\\" + c if c in "*?[]\\" else c for c in ident)
        if len(ident) >= 4:  # a scan: only the CLI and the dashboard look ids up this way
            rows = [m for m, _ in self.r.zscan_iter(index, match=f"{escaped}*", count=1000)][:2]
        if not rows and len(ident) >= 6:
            rows = [m for m, _ in self.r.zscan_iter(index, match=f"*{escaped}", count=1000)][:2]
        if len(rows) > 1:
            raise JobNotFound(f"job id '{ident}' is ambiguous; give more of it")
        return rows[0].decode() if rows else None

    def _qstate(self) -> dict[tuple[str, str], int]:
        self._settle()
        counts = {}
        for field, n in self.r.hgetall(self.k("qstate")).items():
            queue, _, state = field.decode().rpartition(US)
            if int(n) > 0:
                counts[(queue, state)] = int(n)
        return counts

    def _whole_rows(self, ids: Sequence[str]) -> list[JobRow]:
        """The rows of ``ids`` that still exist, in that order (whole hashes)."""
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.k("job", i))
        return [job_row(fields) for fields in pipe.execute() if fields]

    def _fields(self, ids: Sequence[str], *names: str) -> list[list[bytes | None]]:
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(self.k("job", i), *names)
        return pipe.execute()

    # -- failure groups (``fgroup:<hash>``, ``fmsgs:<hash>``: see lua_jobs) -----------------

    def _failure_group(self, error_type: str | None, message: str | None) -> str:
        """The hash naming the failure group of ``error_type`` and ``message`` (its key's tail)."""
        return hashlib.sha1(_nul(error_type) + US.encode() + _nul(message)).hexdigest()

    def _failure_messages_key(self, error_type: str | None) -> str:
        return self.k("fmsgs", hashlib.sha1(_nul(error_type)).hexdigest())

    def _index_failures(self) -> None:
        """Make the failure groups hold every failed job, once: the scripts keep them
        since this release, and data an earlier one wrote is indexed here, in steps of
        :data:`_INDEX_STEP` jobs (each a script of its own), before the first lookup."""
        if self.r.exists(self.k("fgindexed")):
            return
        for state in FAILED:
            after: object = 0
            while after := self.run("index_failures", state.value, after, _INDEX_STEP):
                pass
        self.r.set(self.k("fgindexed"), 1)

    def _finished(self, since: float, until: float = float("inf")) -> list[tuple[str, float]]:
        top = "+inf" if until == float("inf") else f"({until}"
        return [(m.decode(), s) for m, s in self.r.zrangebyscore(
            self.k("fin", JobState.COMPLETED.value), since, top, withscores=True)]

    def _failures(self, since: float, until: float = float("inf")) -> list[tuple[str, float]]:
        top = "+inf" if until == float("inf") else f"({until}"
        return [(m.decode(), s) for m, s in self.r.zrangebyscore(
            self.k("failed"), since, top, withscores=True)]

    def _worker_states(self, owners: list[str]) -> list[str | None]:
        pipe = self.r.pipeline(transaction=False)
        for owner in owners:
            pipe.hget(self.k("worker", owner), "state")
        return [text(s) for s in pipe.execute()]


def _nul(value: str | None) -> bytes:
    """A failure group's part as the scripts hash it: NULL as NUL."""
    return b"\0" if value is None else value.encode()
