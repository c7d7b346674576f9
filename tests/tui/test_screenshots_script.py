"""scripts/screenshots.py keeps working: four SVGs of the seeded demo at 120x40."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_script_writes_the_four_screens(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "screenshots.py"),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name, title, shown in [("overview", "Overview", "p95"), ("jobs", "Jobs", "sort"),
                               ("job-detail", "Job detail", "next attempt"),
                               ("failures", "Failures", "messages)")]:
        svg = (tmp_path / f"{name}.svg").read_text().replace("&#160;", " ")
        assert svg.startswith("<svg") and f"jobrunner dashboard: {title}" in svg
        assert shown in svg
