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

from runner.drivers import preload_shadowed_drivers  # noqa: E402
from runner.worker.main import main  # noqa: E402 - after the handlers on purpose

# As with `jobrunner run` and `python -m runner`, [runner] imports name modules of the
# directory the worker is started in, wherever this file lives. That directory comes
# first: a project's own `tasks` package wins over this checkout's examples. The runner
# itself is imported already, from this checkout; so are the database drivers its backends
# load later (runner.drivers) that a project module of the same name (redis.py) would
# otherwise stand in for.
if os.getcwd() not in sys.path:
    preload_shadowed_drivers(os.getcwd())
    sys.path.insert(0, os.getcwd())

if __name__ == "__main__":
    sys.exit(main(early_signals=_early_signals))
