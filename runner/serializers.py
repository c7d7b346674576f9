"""How job payloads and results are stored: ``[runner] serializer``.

* ``"pickle"`` (default, as huey): any Python value travels, but reading a
  payload can run code, so whoever can write ``jobs.db`` can run code as the
  worker.
* ``"json"``: plain data only (None, bools, numbers, strings, lists, dicts, plus
  tuples, bytes, datetimes and timedeltas, tagged). Reading a payload never
  runs code: a pickled payload is refused, not loaded. A value JSON cannot
  carry fails at the call with :class:`~runner.errors.SerializationError`.

Both read JSON payloads, so a database can be switched from pickle to json
(jobs still pickled then go to ``dead`` with the reason) and back.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import pickle
from collections.abc import Callable
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer
from huey.utils import Error

_TAGS = ("__tuple__", "__dict__", "__bytes__", "__datetime__", "__timedelta__", "__message__",
         "__error__")
_PICKLE_START = 0x80  # protocol 2 and later begin with the PROTO opcode


class UnsupportedValue(TypeError):
    """A value the JSON serializer cannot carry."""


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnsupportedValue(f"JSON cannot carry the float {value!r}")
        return value
    if isinstance(value, Message):
        return {"__message__": {k: _encode(v) for k, v in value._asdict().items()}}
    if isinstance(value, Error):
        return {"__error__": _encode(value.metadata)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple) and type(value) is tuple:
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, dict) and type(value) is dict:
        if all(isinstance(k, str) for k in value) and not (len(value) == 1 and
                                                           next(iter(value)) in _TAGS):
            return {k: _encode(v) for k, v in value.items()}
        return {"__dict__": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if type(value) is datetime.datetime:
        return {"__datetime__": value.isoformat()}
    if type(value) is datetime.timedelta:
        return {"__timedelta__": value.total_seconds()}
    raise UnsupportedValue(f"JSON cannot carry {type(value).__name__} values "
                           f"([runner] serializer = \"json\")")


def _decode_object(obj: dict[str, Any]) -> Any:
    if len(obj) != 1:
        return obj
    ((tag, value),) = obj.items()
    if tag == "__tuple__":
        return tuple(value)
    if tag == "__dict__":
        return {_hashable(k): v for k, v in value}
    if tag == "__bytes__":
        return base64.b64decode(value)
    if tag == "__datetime__":
        return datetime.datetime.fromisoformat(value)
    if tag == "__timedelta__":
        return datetime.timedelta(seconds=value)
    if tag == "__message__":
        return Message(**{k: v for k, v in value.items() if k in Message._fields})
    if tag == "__error__":
        return Error(value)
    return obj


def _hashable(key: Any) -> Any:
    return tuple(_hashable(k) for k in key) if isinstance(key, list) else key


def is_json_payload(data: bytes) -> bool:
    """True when ``data`` was written by the JSON serializer."""
    return data[:1] in (b"{", b"[", b'"') or data[:1].isdigit() or data in (b"null", b"true",
                                                                            b"false")


def dumps(value: Any) -> bytes:
    """``value`` as JSON bytes.

    Raises:
        UnsupportedValue: some part of it cannot be carried.
    """
    return json.dumps(_encode(value), separators=(",", ":"), allow_nan=False).encode()


def loads(data: bytes) -> Any:
    """The value of JSON bytes written by :func:`dumps`."""
    return json.loads(data, object_hook=_decode_object)


class JsonSerializer(Serializer):
    """huey's serializer interface over :func:`dumps`/:func:`loads`; never unpickles."""

    def _serialize(self, data: Any) -> bytes:
        return dumps(data)

    def _deserialize(self, data: bytes) -> Any:
        if data[:1] == bytes([_PICKLE_START]):
            raise ValueError('payload is a pickle and [runner] serializer is "json": it is '
                             "not loaded, since loading a pickle can run code")
        return loads(data)


class PickleSerializer(Serializer):
    """huey's pickle serializer that also reads JSON payloads (after a switch back)."""

    def _deserialize(self, data: bytes) -> Any:
        if is_json_payload(data):
            return loads(data)
        return super()._deserialize(data)


def _short_text(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


#: ``huey.registry.Message`` as pickle opcodes (module, name, STACK_GLOBAL), memoizing
#: nothing, so the memo of the tuple pickled after it starts at 0 as it does alone.
_MESSAGE_CLASS = _short_text(Message.__module__) + _short_text(Message.__qualname__) + b"\x93"
_FRAME, _NEWOBJ_STOP = 0x95, b"\x81."
#: A pickle this long or longer may hold several frames (the pickler's frame size).
_ONE_FRAME = 64 * 1024


def message_encoder(serializer: Serializer) -> Callable[[tuple], bytes]:
    """A function of a huey Message's fields giving the payload ``serializer`` would
    write for that Message.

    Pickling the namedtuple itself costs about three times as much as pickling a
    plain tuple of its fields (the class is looked up and reduced again for every
    job), which a bulk enqueue pays per job. For the pickle serializer the fields
    are pickled as a plain tuple and the class put in front of it: what unpickles
    is ``Message(*fields)``, as from huey's own pickle. Any other serializer
    serializes the Message itself.
    """
    def whole(fields: tuple) -> bytes:
        return serializer.serialize(Message(*fields))

    protocol = getattr(serializer, "pickle_protocol", 0)
    if type(serializer) is not PickleSerializer or serializer.comp or protocol < 4:
        return whole
    head = bytes([0x80, protocol]) + _MESSAGE_CLASS
    dumps = pickle.dumps

    def encode(fields: tuple) -> bytes:
        raw = dumps(fields, protocol)
        # PROTO, FRAME and its length (11 bytes), the tuple, STOP: the tuple's opcodes
        # go unframed (framing is optional) between the class and NEWOBJ.
        if len(raw) < _ONE_FRAME and raw[2] == _FRAME:
            return head + raw[11:-1] + _NEWOBJ_STOP
        # Several frames: they stay as they are, and NEWOBJ takes the place of STOP in
        # the last (a byte for a byte: its length holds), STOP after it, unframed.
        return head + raw[2:-1] + _NEWOBJ_STOP

    return encode


def make_serializer(kind: str) -> Serializer:
    """The serializer named by ``[runner] serializer``."""
    return JsonSerializer() if kind == "json" else PickleSerializer()
