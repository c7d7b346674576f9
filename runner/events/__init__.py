"""Event tasks: ``@event_handler``, ``emit()``, patterns, per-handler settings, fan-out, replay.

The names a task or a script needs are importable from here
(``runner.events.current_event()`` inside a handler); the machinery lives in
:mod:`runner.events.delivery`.
"""

from runner.events.delivery import (
    Handler,
    current_event,
    emit,
    emit_many,
    event_handler,
    handlers,
    handlers_for,
)
from runner.events.replay import replay  # registers the replay task wherever events are

__all__ = ["Handler", "current_event", "emit", "emit_many", "event_handler", "handlers",
           "handlers_for", "replay"]
