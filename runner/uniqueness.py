"""Unique jobs: which key a task's call has, for how long and in which states it counts.

``@task(unique=True)`` keys a call by the task's name and its arguments,
bound to the function's parameters with their defaults: ``f(11)``,
``f(user=11)`` and ``f(11, full=False)`` are one call; ``unique_key=``
gives the key instead (a string, or a function of the call's arguments
returning one). While a job of that key is in one of
``unique_states`` (default waiting, scheduled, running) and, with
``unique_for``, younger than that many seconds, calling the task again writes
nothing and returns the existing job's ``Result``. The store checks the key
inside the transaction that writes the job, so concurrent producers cannot
both write one.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConfigError
from runner.store.states import JobState

#: Words a task may use for the states that count, beside the job states themselves.
STATE_WORDS: dict[str, tuple[JobState, ...]] = {
    "waiting": (JobState.AVAILABLE,),
    "scheduled": (JobState.SCHEDULED, JobState.RETRYING),
    "running": (JobState.EXECUTING,),
}
#: All three words: a job counts while it waits or runs.
DEFAULT_STATES = tuple(STATE_WORDS)


@dataclass(frozen=True)
class UniqueSpec:
    """How a task's calls are made unique."""

    key: str | Callable[..., Any] | None
    """A fixed key, a function of the call's arguments, or None: the task's name and arguments."""
    unique_for: float | None
    states: tuple[str, ...]
    """Job state values."""
    signature: inspect.Signature | None = field(default=None, compare=False)
    """The task function's, to key a call by its bound arguments (None: as given)."""

    def key_for(self, task_name: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
        """The unique key of one call."""
        if isinstance(self.key, str):
            return self.key
        if self.key is not None:
            return str(self.key(*args, **kwargs))
        if self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError:
                pass  # a call the function cannot take: keyed as given, it fails when run
            else:
                bound.apply_defaults()
                args, kwargs = bound.args, bound.kwargs
        text = json.dumps([list(args), kwargs], sort_keys=True, default=repr)
        return f"{task_name}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def unique_spec(name: str, *, unique: bool, unique_key: str | Callable[..., Any] | None,
                unique_for: float | None,
                unique_states: Sequence[str] | None,
                func: Callable[..., Any] | None = None) -> UniqueSpec | None:
    """A task's uniqueness from its decorator options, or None; refuses what cannot work.

    ``func``, the task function, keys calls by their bound arguments.

    Raises:
        ConfigError: naming the task and the option.
    """
    if not unique and unique_key is None:
        if unique_for is not None or unique_states is not None:
            raise ConfigError(f"task '{name}': unique_for and unique_states need unique=True "
                              "or unique_key=")
        return None
    if unique_key is not None and not (isinstance(unique_key, str) and unique_key
                                       or callable(unique_key)):
        raise ConfigError(f"task '{name}': unique_key must be a non-empty string or a "
                          f"function of the task's arguments, got {unique_key!r}")
    if unique_for is not None and (isinstance(unique_for, bool)
                                   or not isinstance(unique_for, (int, float))
                                   or not unique_for > 0):
        raise ConfigError(f"task '{name}': unique_for must be a number of seconds > 0, "
                          f"got {unique_for!r}")
    words = DEFAULT_STATES if unique_states is None else tuple(unique_states)
    states: list[str] = []
    for word in words:
        if word in STATE_WORDS:
            states += [s.value for s in STATE_WORDS[word]]
        elif word in {s.value for s in JobState}:
            states.append(word)
        else:
            known = ", ".join([*STATE_WORDS, *(s.value for s in JobState)])
            raise ConfigError(f"task '{name}': unique_states: unknown state {word!r} "
                              f"(known: {known})")
    if not states:
        raise ConfigError(f"task '{name}': unique_states must name at least one state")
    return UniqueSpec(unique_key, None if unique_for is None else float(unique_for),
                      tuple(dict.fromkeys(states)), _signature(func))


def _signature(func: Callable[..., Any] | None) -> inspect.Signature | None:
    if func is None:
        return None
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a builtin or a callable without one: keyed as given
        return None
