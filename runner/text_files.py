"""The runner's own text files (settings.toml, the environment file), read as UTF-8.

A byte order mark at the start, which Windows editors write and Python's
``tomllib`` refuses at "line 1, column 1", is dropped, as systemd drops it
from the same environment file. A byte that is not UTF-8 is reported at its
line and column, as a TOML syntax error is, rather than at a byte offset.
"""

from __future__ import annotations

from pathlib import Path

UTF8_BOM = b"\xef\xbb\xbf"


def read_utf8(path: Path) -> str:
    """The text of ``path``, without a leading byte order mark.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not UTF-8; the message gives the byte, its line and column.
    """
    data = path.read_bytes()
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[start:exc.start].decode("utf-8", "replace")) + 1
        raise ValueError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at line {line}, "
                         f"column {column}; save the file as UTF-8") from None
