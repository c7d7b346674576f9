"""scripts/screenshots.py keeps working: four SVGs of the seeded demo at 120x40, the same
bytes at every run, so a run changes the committed pictures only when the dashboard does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("overview", "jobs", "job-detail", "failures")


def _start(out: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(ROOT / "scripts" / "screenshots.py"),
                             "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_two_runs_at_once_write_the_four_screens_alike(tmp_path):
    # Given two runs started together (as the test suites of two checkouts may)
    first, second = tmp_path / "first", tmp_path / "second"
    runs = [_start(first), _start(second)]
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    # Then each wrote the four screens, byte for byte the same
    for name, title, shown in [("overview", "Overview", "p95"), ("jobs", "Jobs", "sort"),
                               ("job-detail", "Job detail", "next attempt"),
                               ("failures", "Failures", "messages)")]:
        svg = (first / f"{name}.svg").read_text().replace("&#160;", " ")
        assert svg.startswith("<svg") and f"jobrunner dashboard: {title}" in svg
        assert shown in svg
    changed = [n for n in NAMES
               if (first / f"{n}.svg").read_bytes() != (second / f"{n}.svg").read_bytes()]
    assert changed == []
