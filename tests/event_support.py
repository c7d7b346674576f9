"""What the event tests share: settings that load the handlers, and counting rows."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_settings

EVENTS_SETTINGS = """
[events]
dedupe_window = 60
emit_deadline = 0.3
"""


def write_events_settings(directory: Path) -> Path:
    """Settings with short event deadlines and ``tests.event_handlers`` imported."""
    path = write_settings(directory, extra=EVENTS_SETTINGS)
    text = path.read_text().replace('imports = ["tests.jobs"]',
                                    'imports = ["tests.jobs", "tests.event_handlers"]')
    text = text.replace('busy_timeout = 10', 'busy_timeout = 10\nwrite_deadline = 0.3')
    path.write_text(text)
    return path


def db_of(huey):
    return huey.jobs.db


def count(huey, sql: str, params: tuple = ()) -> int:
    return db_of(huey).query(sql, params)[0][0]
