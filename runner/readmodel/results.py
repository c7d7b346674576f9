"""A finished job's stored return value, as the dashboard shows it.

Results live in ``runner_kv`` under the job's id, serialized by huey (pickle
unless another serializer is configured). The dashboard only peeks: reading a
result here never consumes it, so ``Result.get()`` in the enqueuing program
still finds it. Pickles are decoded with a loader that builds plain data only
(no class of the application is imported or called), so a dashboard never runs
code stored in the database.
"""

from __future__ import annotations

import builtins
import collections
import copyreg
import datetime
import decimal
import io
import json
import pickle
import uuid
from dataclasses import dataclass

from runner.store.backend import Store

#: Classes a stored result may be rebuilt from; anything else is described, not loaded.
_PLAIN = {
    ("builtins", name) for name in ("dict", "list", "tuple", "set", "frozenset", "str",
                                    "bytes", "bytearray", "int", "float", "complex", "bool",
                                    "NoneType", "slice", "range")
} | {("datetime", n) for n in ("datetime", "date", "time", "timedelta", "timezone")} | {
    ("decimal", "Decimal"), ("uuid", "UUID"), ("collections", "OrderedDict"),
    ("copyreg", "_reconstructor"), ("builtins", "object")}
_MODULES = {"builtins": builtins, "datetime": datetime, "decimal": decimal, "uuid": uuid,
            "collections": collections, "copyreg": copyreg}


@dataclass(frozen=True)
class ResultView:
    """What the dashboard shows of a job's stored result."""

    text: str
    """The value as JSON when it is plain data, else a description of it."""
    size: int
    """Bytes stored."""
    value: object = None
    """The decoded value, when it is plain data (for copying as JSON)."""
    decoded: bool = True


class _Refused(pickle.UnpicklingError):
    """The pickle names a class outside plain data."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PLAIN:
            raise _Refused(f"{module}.{name}")
        if (module, name) == ("builtins", "NoneType"):
            return type(None)
        return getattr(_MODULES[module], name)


def decode_result(data: bytes) -> ResultView:
    """Decode a stored result without importing or calling application code."""
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        pass
    else:
        return ResultView(json.dumps(value, indent=2, default=repr), len(data), value)
    try:
        value = _PlainUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        return ResultView(f"(a pickled {exc}, {len(data)} bytes: not decoded by the dashboard)",
                          len(data), None, decoded=False)
    except Exception as exc:  # noqa: BLE001 - any undecodable blob is described, not raised
        return ResultView(f"({len(data)} bytes that do not decode: {type(exc).__name__})",
                          len(data), None, decoded=False)
    return ResultView(json.dumps(value, indent=2, default=repr), len(data), value)


def job_result(store: Store, job_id: str) -> ResultView | None:
    """The result stored for ``job_id`` (without consuming it); None when none is stored."""
    if not store.has_table("runner_kv"):
        return None
    data = store.stored_result(job_id)
    return decode_result(bytes(data)) if data is not None else None
