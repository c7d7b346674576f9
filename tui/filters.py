"""The Jobs filter line: ``state:dead queue:mail task:send_invoice error:timeout free text``."""

from __future__ import annotations

from dataclasses import replace

from runner.errors import InvalidFilter
from runner.readmodel.dashboard import JOB_STATES
from runner.store.rows import JobFilter

_KEYS = ("state", "queue", "task", "event", "worker", "error")
#: The field of :class:`JobFilter` each word sets, where it is not the word itself.
_FIELDS = {"event": "event_id", "error": "error_text"}
#: What the refusal of a word without a value suggests.
_EXAMPLES = {"state": "dead", "error": "TimeoutError"}
#: Every state a filter may name: the job states and the two groups.
STATE_NAMES = (*[s for s in JOB_STATES if s], "waiting", "failed")


def parse_filter(text: str, base: JobFilter | None = None) -> JobFilter:
    """Qualifiers set fields; the remaining words are a substring search.

    ``error:`` is a part of the error (type or message, any case), not the exact one the
    Failures screen picks: a word cannot hold a message with spaces.

    Raises:
        InvalidFilter: a state that does not exist, or a qualifier without a value.
    """
    fields: dict[str, str | None] = {"state": None, "queue": None, "task": None,
                                     "event_id": None, "worker": None, "error_text": None}
    error = None
    if base is not None:
        # Neither is typed in the box: the state has its own key, and the exact error
        # comes from the Failures screen (esc clears it).
        fields["state"] = base.state
        error = base.error
    words = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key in _KEYS:
            if not value:
                raise InvalidFilter(f"'{key}:' needs a value, e.g. {key}:"
                                    f"{_EXAMPLES.get(key, 'name')}")
            if key == "state" and value not in STATE_NAMES:
                raise InvalidFilter(f"no state '{value}': use one of {', '.join(STATE_NAMES)}")
            fields[_FIELDS.get(key, key)] = value
        else:
            words.append(word)
    return JobFilter(text=" ".join(words) or None, error=error, **fields)


def describe(filters: JobFilter) -> str:
    """The filter as it would be typed (empty for none)."""
    parts = [f"{k}:{getattr(filters, k)}" for k in ("queue", "task", "worker")
             if getattr(filters, k)]
    if filters.event_id:
        parts.append(f"event:{filters.event_id}")
    if filters.error_text:
        parts.append(f"error:{filters.error_text}")
    if filters.text:
        parts.append(filters.text)
    return " ".join(parts)


def describe_error(filters: JobFilter) -> str:
    """The exact error the filter takes (``Fatal: bad input 1``); empty for none."""
    if filters.error is None:
        return ""
    error_type, message = filters.error
    return f"{error_type or '-'}: {message or '-'}"


def with_state(filters: JobFilter, state: str | None) -> JobFilter:
    """The same filter with another state."""
    return replace(filters, state=state)
