"""Worker processes whose wall clock is off, as on a host without NTP."""

from __future__ import annotations

import os

from tests.conftest import ROOT

SKEWED_CLOCK_DIR = ROOT / "tests" / "skewed_clock"


def skewed_clock(seconds: float) -> dict[str, str]:
    """Environment for ``make_worker`` that puts the process's ``time.time()``
    ``seconds`` ahead of the true time (behind when negative)."""
    return {"PYTHONPATH": os.pathsep.join([str(SKEWED_CLOCK_DIR), str(ROOT)]),
            "TEST_CLOCK_SKEW": str(seconds)}
