"""The ``[events]`` section of settings.toml (declared in :mod:`runner.sections`)::

    [events]
    dedupe_window = 3600        # seconds an idempotency key suppresses repeats
    emit_deadline = 15          # seconds emit() retries a locked database
    dispatch_queue = "default"  # queue of the built-in fan-out job
    dispatch_priority = 0       # priority of the fan-out job

    [events.patterns."user.*"]  # options for handlers subscribed with this pattern
    queue = "events"

    [events.handlers.handle_signup]   # options for one handler (wins over patterns)
    max_retries = 5
    timeout = 10

Handler options resolve as: ``[worker]`` defaults, the decorator, then
``[events.patterns.P]``, then ``[events.handlers.NAME]``, then ``[tasks.NAME]``.
The section is typed and validated when the settings are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.config import Settings
from runner.sections import EventSettings
from runner.settings_loader import parse_settings


def event_settings(settings: Settings) -> EventSettings:
    """The ``[events]`` section of ``settings``."""
    return settings.events


def parse_events(raw: Mapping[str, Any], *, where: str = "settings") -> EventSettings:
    """Validate a raw ``[events]`` table, as loading a settings file does.

    Raises:
        ConfigError: an unknown key or a bad value, named.
    """
    return parse_settings({"events": dict(raw)}, source=where).events


__all__ = ["EventSettings", "event_settings", "parse_events"]
