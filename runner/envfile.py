"""The service's environment file: how every program finds the settings the service uses.

The systemd unit loads ``/etc/jobrunner/jobrunner.env`` (``EnvironmentFile=``),
which names the settings file (``RUNNER_SETTINGS=``) and any overrides
(``RUNNER_DATABASE=``, ``WORKER_*``). ``run.py``, ``python -m runner``, ``python -m tui``
and local scripts (on their first enqueue or emit) read that file too
(``$RUNNER_ENV_FILE`` names another), under the process's own environment, so
an administrator's shell in the checkout sees, and writes to, what the service
sees. The settings file is then, first found:

1. ``--settings PATH``;
2. ``$RUNNER_SETTINGS`` of the process;
3. ``RUNNER_SETTINGS`` in the environment file;
4. ``settings.toml`` in the working directory (built-in defaults without it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runner.config import SETTINGS_ENV
from runner.errors import ConfigError
from runner.text_files import read_utf8

#: Names another environment file (or "" for none).
ENV_FILE_VAR = "RUNNER_ENV_FILE"
DEFAULT_ENV_FILE = "/etc/jobrunner/jobrunner.env"


def parse_env_file(text: str, where: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's ``EnvironmentFile=`` reads them (quotes, comments)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key.replace("_", "").isalnum() or key[0].isdigit():
            raise ConfigError(f"{where}:{number}: expected KEY=VALUE, got {raw.strip()!r}")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


@dataclass(frozen=True)
class ServiceEnvironment:
    """The environment to load settings with, and where its settings file came from."""

    environ: dict[str, str]
    env_file: str | None
    """The environment file read, if one was."""
    file_values: Mapping[str, str]

    def settings_source(self, explicit: str | None) -> str:
        """How the settings file is found, for ``check`` and error messages."""
        if explicit is not None:
            return "--settings"
        if SETTINGS_ENV in self.file_values and self.environ.get(SETTINGS_ENV) == \
                self.file_values[SETTINGS_ENV]:
            return f"{SETTINGS_ENV} in {self.env_file}"
        if SETTINGS_ENV in self.environ:
            return f"${SETTINGS_ENV}"
        return "settings.toml in the working directory"


def service_environment(environ: Mapping[str, str] | None = None) -> ServiceEnvironment:
    """The process environment over the service's environment file (when there is one)."""
    env = dict(os.environ if environ is None else environ)
    path = env.get(ENV_FILE_VAR, DEFAULT_ENV_FILE)
    if not path:
        return ServiceEnvironment(env, None, {})
    file = Path(path)
    try:
        text = read_utf8(file)
    except FileNotFoundError:
        if ENV_FILE_VAR in env:
            raise ConfigError(f"{path}: environment file not found (${ENV_FILE_VAR})") from None
        return ServiceEnvironment(env, None, {})
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the environment file: {exc}") from None
    except ValueError as exc:  # not UTF-8, with the line and column
        raise ConfigError(f"{path}: {exc}") from None
    values = parse_env_file(text, path)
    return ServiceEnvironment({**values, **env}, path, values)
