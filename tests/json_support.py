"""What the JSON serializer tests share: settings that pick it, and the stored payloads."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_settings


def write_json_settings(directory: Path) -> Path:
    """Settings with ``serializer = "json"`` and every test task module imported."""
    path = write_settings(directory)
    path.write_text(path.read_text().replace(
        'imports = ["tests.jobs"]',
        'imports = ["tests.jobs", "tests.event_handlers", "tests.sched_jobs"]\n'
        'serializer = "json"'))
    return path


def payloads(db):
    return [bytes(data) for (data,) in db.query("SELECT data FROM runner_job")]
