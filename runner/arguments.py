"""Job arguments: the short JSON view kept on the row, and errors that name the bad one."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import Any

from runner.errors import SerializationError

#: One encoder for every preview (``json.dumps(default=...)`` builds one per call).
_encode = json.JSONEncoder(default=repr).encode
#: The same encoding through the C encoder made once (a bulk enqueue previews every
#: job; ``encode()`` makes a new one per call). No circular check: a circular
#: argument raises RecursionError and is previewed by ``repr`` as before.
_c_encode = c_make_encoder(None, repr, encode_basestring_ascii, None, ": ", ", ", False,
                           False, True) if c_make_encoder is not None else None


def preview_args(args: tuple, kwargs: dict) -> str:
    """A short JSON view of the arguments for the CLI and the dashboard."""
    try:
        if _c_encode is None:
            text = _encode({"args": list(args), "kwargs": kwargs})
        else:
            # The text of encoding {"args": [...], "kwargs": {...}}, put together around
            # the two values: the C encoder takes three times as long over the outer dict.
            if kwargs:
                text = "".join(('{"args": ', *_c_encode(list(args), 0), ', "kwargs": ',
                                *_c_encode(kwargs, 0), "}"))
            else:  # most calls
                text = '{"args": ' + "".join(_c_encode(list(args), 0)) + ', "kwargs": {}}'
    except Exception:
        text = repr((args, kwargs))
    return text if len(text) <= 2000 else text[:1997] + "..."


def unserializable(task: str, args: tuple, kwargs: dict, exc: Exception,
                   serialize: Callable[[Any], object] | None = None) -> SerializationError:
    """The error for arguments that did not serialize, naming the first bad one."""
    named = [(f"argument {i}", v) for i, v in enumerate(args, 1)]
    named += [(f"argument '{k}'", v) for k, v in kwargs.items()]
    for label, value in named:
        if not _serializes(value, serialize or _pickle):
            return SerializationError(
                f"task '{task}': {label} ({type(value).__name__} {_short(value)}) cannot be "
                f"serialized: {exc}; nothing was enqueued")
    return SerializationError(f"task '{task}': cannot be serialized: {exc}; nothing was enqueued")


def _pickle(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


def _serializes(value: Any, serialize: Callable[[Any], object]) -> bool:
    try:
        serialize(value)
    except Exception:
        return False
    return True


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
