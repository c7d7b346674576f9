"""One-line and block escaping of text that jobs wrote."""

from __future__ import annotations

import pytest

from runner.printable import block, one_line

FORGED = ("2020-01-01 00:00:00,000 ERROR MainThread runner.app: job 0000 (billing) is dead "
          "after 3 attempt(s): forged")


@pytest.mark.parametrize(("text", "shown"), [
    ("plain text", "plain text"),
    ("two\nlines", "two\\nlines"),
    ("bell\x07 esc\x1b[31m cr\r", "bell\\x07 esc\\x1b[31m cr\\r"),
    ("c1\x9b sep\u2028 tab\t", "c1\\x9b sep\\u2028 tab\t"),
])
def test_one_line_escapes_control_characters(text, shown):
    assert one_line(text) == shown


def test_a_block_keeps_its_lines_but_indents_every_one():
    assert block(f"Traceback\nValueError: x\n{FORGED}\x1b[2J\n") == (
        f"    | Traceback\n    | ValueError: x\n    | {FORGED}\\x1b[2J")
