"""Event names, data and subscription patterns: validation and matching (pure functions).

An event name is one or more dot-separated segments of ``[A-Za-z0-9_-]``, such
as ``user.signup`` or ``billing.invoice-paid``. A pattern is a name in which a
whole segment may be a wildcard:

* ``*`` matches exactly one segment: ``user.*`` matches ``user.signup`` but not
  ``user`` nor ``user.signup.email``; ``*.signup`` matches ``user.signup``.
* ``**`` (or its AMQP spelling ``#``) matches any number of segments,
  **including zero**: ``user.**`` matches ``user``, ``user.signup`` and
  ``user.signup.email``; ``**`` alone matches every event.

Partial-segment wildcards (``user*``) are not patterns and are rejected, so a
pattern means the same thing to every reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from runner.errors import ConfigError, RunnerError, SerializationError

_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
NAME_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
#: Longest accepted event name, in characters.
MAX_NAME = 200
_ANY_DEPTH = ("**", "#")


def check_name(name: object) -> str:
    """Return ``name`` if it is a valid event name.

    Raises:
        SerializationError: naming the bad name (exit code 65 from the CLI).
    """
    if type(name) is str and name in _VALID_NAMES:
        return name
    if not isinstance(name, str) or len(name) > MAX_NAME or not NAME_RE.fullmatch(name):
        raise SerializationError(
            f"invalid event name {name!r}: use dot-separated segments of letters, digits, "
            f"'_' and '-' (at most {MAX_NAME} characters), e.g. 'user.signup'; "
            "nothing was written")
    if len(_VALID_NAMES) < 10_000:  # a producer repeats a few names (bounded all the same)
        _VALID_NAMES.add(name)
    return name


#: Names already checked: most emits repeat a handful, and the check is a regex match.
_VALID_NAMES: set[str] = set()


def check_pattern(pattern: object, *, error: type[RunnerError] = ConfigError) -> str:
    """Return ``pattern`` if it is a valid subscription pattern.

    Args:
        error: what a bad one raises: a subscription is configuration, a pattern
            that narrows a listing or a replay is data (SerializationError, as a bad
            name is to ``emit``).

    Raises:
        ConfigError: (or ``error``) naming the bad pattern or segment.
    """
    if not isinstance(pattern, str) or not pattern:
        raise error(f"invalid event pattern {pattern!r}: expected a non-empty string")
    for segment in pattern.split("."):
        if segment in ("*", *_ANY_DEPTH) or _SEGMENT.fullmatch(segment):
            continue
        raise error(
            f"invalid event pattern {pattern!r}: segment {segment!r} must be a name, "
            "'*' (one segment) or '**'/'#' (any number of segments)")
    return pattern


def is_wildcard(pattern: str) -> bool:
    """True when the pattern contains a wildcard segment."""
    return any(s in ("*", *_ANY_DEPTH) for s in pattern.split("."))


def matches(pattern: str, name: str) -> bool:
    """True when event ``name`` matches subscription ``pattern`` (see module docstring)."""
    if pattern == name:
        return True
    return _match(tuple(pattern.split(".")), tuple(name.split(".")))


@lru_cache(maxsize=4096)
def _match(pattern: tuple[str, ...], name: tuple[str, ...]) -> bool:
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head in _ANY_DEPTH:
        # Zero segments, or swallow one and try again: memoised, so linear in practice.
        return _match(rest, name) or (bool(name) and _match(pattern, name[1:]))
    if not name:
        return False
    if head == "*" or head == name[0]:
        return _match(rest, name[1:])
    return False


def _compact_encoder() -> Callable[[Any], str]:
    """Compact JSON text of a value, as ``json.dumps(separators=(",", ":"), allow_nan=False)``.

    ``JSONEncoder.encode`` builds a new C encoder at every call, which costs more
    than encoding a small event's data: one is built here and kept. It keeps no
    table of the containers it is inside (that table is shared state, and an
    error leaves entries in it), so circular data ends in RecursionError.
    """
    base = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
    if c_make_encoder is None:  # a Python without the _json accelerator
        return base.encode
    encode = c_make_encoder(None, base.default, encode_basestring_ascii, None,
                            base.key_separator, base.item_separator, False, False, False)
    join = "".join

    def compact(value: Any) -> str:
        return join(encode(value, 0))

    return compact


_ENCODE = _compact_encoder()


def encode_data(name: str, data: Any) -> str:
    """Event data as compact JSON text.

    Raises:
        SerializationError: naming the path of the first value JSON cannot hold, or
            of the first mapping key that is not a string.
    """
    try:
        text = _ENCODE(data)
        # JSON writes an int, float, bool or None key as a string: {1: "a", "1": "b"}
        # would be stored with "1" twice and reach handlers as {"1": "b"}.
        found = _non_string_key(data) if isinstance(data, _CONTAINERS) else None
    except RecursionError:
        raise SerializationError(
            f"event '{name}': data is circular (a container inside itself) or nested too "
            "deeply for JSON; nothing was written") from None
    except (TypeError, ValueError) as exc:
        path, bad = _first_bad(data, "data")
        text = repr(bad) if len(repr(bad)) <= 60 else repr(bad)[:57] + "..."
        raise SerializationError(
            f"event '{name}': {path} ({type(bad).__name__} {text}) is not JSON-serializable "
            f"({exc}); nothing was written") from None
    if found is not None:
        *path, key = found
        where = "data" + "".join(f"[{step!r}]" for step in path)
        raise SerializationError(
            f"event '{name}': {where} key {key!r} ({type(key).__name__}) is not a string "
            "(JSON object keys are strings: it would be stored as one, and could replace "
            "another key); nothing was written")
    return text


_CONTAINERS = (dict, list, tuple)


def _non_string_key(value: Any) -> list[Any] | None:
    """The path to the first mapping key that is not a string, that key last; else None."""
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return [k]
            if isinstance(v, _CONTAINERS):
                found = _non_string_key(v)
                if found is not None:
                    return [k, *found]
    else:
        for i, v in enumerate(value):
            if isinstance(v, _CONTAINERS):
                found = _non_string_key(v)
                if found is not None:
                    return [i, *found]
    return None


def _first_bad(value: Any, path: str) -> tuple[str, Any]:
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path} key {k!r}", k
            found = _first_bad(v, f"{path}[{k!r}]")
            if found[0]:
                return found
        return "", None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = _first_bad(v, f"{path}[{i}]")
            if found[0]:
                return found
        return "", None
    if value is None or isinstance(value, (str, int, bool)):
        return "", None
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return "", None
    return path, value


def literal_prefix(pattern: str | None) -> str:
    """The dotted head of a pattern before its first wildcard segment."""
    if not pattern:
        return ""
    head = []
    for segment in pattern.split("."):
        if segment in ("*", "**", "#"):
            break
        head.append(segment)
    return ".".join(head)
