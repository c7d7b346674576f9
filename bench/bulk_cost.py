"""Instructions per job of ``task.map()``, counted under callgrind rather than timed.

    .venv/bin/python bench/bulk_cost.py [--jobs 2000,12000]

Runs bench_bulk's ``map()`` of two sizes in a fresh process each under
``valgrind --tool=callgrind`` (SQLite at ``synchronous=FULL``, the fsync not
counted) and prints the difference per job, so start-up cancels out. The
figure does not move with the load of the machine.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(HERE))

from bench.harness import jobs_written  # noqa: E402

SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {root!r})
from bench.bench_bulk import SETTINGS, bulk_noop
from runner import configure, load_settings
directory = Path(sys.argv[2])
(directory / "settings.toml").write_text(SETTINGS.format(db=directory / "jobs.db"))
configure(load_settings(directory / "settings.toml", environ={{}}))
bulk_noop(-1)
bulk_noop.map(range(int(sys.argv[1])))
"""


def instructions(script: Path, jobs: int) -> int:
    with tempfile.TemporaryDirectory() as work:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={work}/cg.out",
             sys.executable, str(script), str(jobs), work],
            capture_output=True, text=True, check=True).stderr
        written = jobs_written(Path(work) / "jobs.db")
    if written != jobs + 1:  # the map's jobs and the call that opens the database
        raise SystemExit(f"{written} jobs written for {jobs + 1} calls")
    found = re.search(r"Collected : (\d+)", out)
    assert found, out
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="2000,12000")
    args = parser.parse_args()
    small, large = (int(n) for n in args.jobs.split(","))
    with tempfile.TemporaryDirectory() as work:
        script = Path(work) / "map_once.py"
        script.write_text(SCRIPT.format(root=str(HERE)))
        cost = (instructions(script, large) - instructions(script, small)) / (large - small)
    print(f"task.map(): {cost:,.0f} instructions per job (callgrind, {small} and {large} jobs)")


if __name__ == "__main__":
    main()
