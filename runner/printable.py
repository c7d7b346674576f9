"""Text from jobs made safe for a line-oriented log file or a terminal.

Exception messages, log arguments and job arguments are written by task code
and by whoever enqueued the job. A newline in them could forge a whole line of
``worker.log`` (say, a fake "is dead after" record), and an escape sequence
could rewrite what an operator's terminal shows. One-line outputs therefore
escape every control character; multi-line blocks (tracebacks) keep their
lines but have each one indented and escaped, so only a real record starts at
the beginning of a line.
"""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls, and the Unicode line/paragraph separators.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\x1b"}
_BLOCK_INDENT = "    | "
#: How the traceback ``logging`` adds after a stored log message begins.
_TRACEBACK_START = "\nTraceback (most recent call last):"


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: object) -> str:
    """``text`` with every control character (newlines included) shown as an escape."""
    value = text if isinstance(text, str) else str(text)
    return _CONTROL.sub(_escape, value) if _CONTROL.search(value) else value


def storable(text: str) -> str:
    """``text`` as every backend can store it: lone surrogates (bytes that were not
    UTF-8, decoded with ``surrogateescape`` as ``os.fsdecode`` does) shown as escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def block(text: str) -> str:
    """A multi-line block (a traceback) whose lines are escaped and indented."""
    lines = text.rstrip("\n").split("\n")
    return "\n".join(_BLOCK_INDENT + one_line(line) for line in lines)


def split_traceback(message: str) -> tuple[str, str]:
    """A stored log message and the traceback stored after it ('' when none): the
    message's own newlines are part of the message, as in ``worker.log``."""
    at = message.find(_TRACEBACK_START)
    return (message, "") if at < 0 else (message[:at], message[at + 1:])
