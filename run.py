"""Start the job runner's worker: ``python run.py --help`` lists options and exit codes."""

import os
import signal
import sys

# Importing the runner takes a few hundred milliseconds; a stop request in that
# window is remembered here and honoured as a drain once the worker is up.
_early_signals: list[int] = []


def _remember(signum: int, frame: object) -> None:
    _early_signals.append(signum)


for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, _remember)

from runner.worker.main import main  # noqa: E402 - after the handlers on purpose

# As with `jobrunner run` and `python -m runner`, [runner] imports name modules of the
# directory the worker is started in, wherever this file lives. That directory comes
# first: a project's own `tasks` package wins over this checkout's examples. The runner
# itself is imported already, from this checkout.
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

if __name__ == "__main__":
    sys.exit(main(early_signals=_early_signals))
