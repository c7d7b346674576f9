"""The Jobs filter line: ``state:dead queue:mail task:send_invoice free text``."""

from __future__ import annotations

from dataclasses import replace

from runner.store.queries import JobFilter

_KEYS = ("state", "queue", "task", "event")


def parse_filter(text: str, base: JobFilter | None = None) -> JobFilter:
    """Qualifiers set fields; the remaining words are a substring search."""
    fields: dict[str, str | None] = {"state": None, "queue": None, "task": None,
                                     "event_id": None}
    if base is not None:
        fields["state"] = base.state
    words = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if sep and key in _KEYS and value:
            fields["event_id" if key == "event" else key] = value
        else:
            words.append(word)
    return JobFilter(text=" ".join(words) or None, **fields)


def describe(filters: JobFilter) -> str:
    """The filter as it would be typed (empty for none)."""
    parts = [f"{k}:{getattr(filters, k)}" for k in ("queue", "task") if getattr(filters, k)]
    if filters.event_id:
        parts.append(f"event:{filters.event_id}")
    if filters.text:
        parts.append(filters.text)
    return " ".join(parts)


def with_state(filters: JobFilter, state: str | None) -> JobFilter:
    """The same filter with another state."""
    return replace(filters, state=state)
