"""How a background pass (claim, heartbeat, scheduler) reports that it failed.

A database that is locked past ``write_deadline`` or a server that does not answer
is an expected condition the pass retries by itself: a warning with the reason,
not an error with a traceback every second. Anything else is a defect worth its
traceback.
"""

from __future__ import annotations

import logging
import sys

from runner.errors import DatabaseLocked, DatabaseUnavailable

#: Errors a pass meets when the database is busy or away, and retries.
PASSING = (DatabaseLocked, DatabaseUnavailable)


def log_pass_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled: one warning line if it passes by itself."""
    exc = sys.exc_info()[1]
    if isinstance(exc, PASSING):
        log.warning(message + ": %s", *args, exc)
    else:
        log.exception(message, *args)
