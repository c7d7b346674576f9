"""scripts/screenshots.py keeps working: four SVGs of the seeded demo at 120x40, the same
bytes at every run, so a run changes the committed pictures only when the dashboard does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("overview", "jobs", "job-detail", "failures")


def _shoot(out: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_script_writes_the_four_screens_the_same_at_every_run(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    _shoot(first)
    for name, title, shown in [("overview", "Overview", "p95"), ("jobs", "Jobs", "sort"),
                               ("job-detail", "Job detail", "next attempt"),
                               ("failures", "Failures", "messages)")]:
        svg = (first / f"{name}.svg").read_text().replace("&#160;", " ")
        assert svg.startswith("<svg") and f"jobrunner dashboard: {title}" in svg
        assert shown in svg
    _shoot(second)
    changed = [n for n in NAMES
               if (first / f"{n}.svg").read_bytes() != (second / f"{n}.svg").read_bytes()]
    assert changed == []
