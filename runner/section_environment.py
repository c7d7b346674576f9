"""The environment form of ``[queues.NAME]`` and ``[tasks.NAME]``: one variable per key.

The key is in the variable's name and the queue or task names are in its value,
as comma-separated ``NAME=VALUE`` pairs::

    WORKER_QUEUE_CONCURRENCY="emails=2,bulk_mail=5"   # [queues.emails] concurrency = 2 ...
    WORKER_QUEUE_RATE_LIMIT="emails=100/m burst 20"
    WORKER_TASK_CONCURRENCY="rebuild_index=1"          # [tasks.rebuild_index] concurrency = 1

A name never has to be spelled inside a variable's name, so queue names with
underscores, dots or capitals are written as they are, and a variable can
never be read two ways. Every ``WORKER_QUEUE_*`` (but ``WORKER_QUEUE_TYPE``)
and ``WORKER_TASK_*`` variable must name a key of its section; an empty one
counts as unset. The values are typed here and then checked like the file's,
by :mod:`runner.settings_environment`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runner.errors import ConfigError

#: Variable prefix -> the section of named tables it sets.
PREFIXES = {"WORKER_QUEUE_": "queues", "WORKER_TASK_": "tasks"}
#: Variables under those prefixes that are something else.
OTHER_VARIABLES = frozenset({"WORKER_QUEUE_TYPE"})
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_NAME = re.compile(r"^[^=,\s][^=,]*$")


@dataclass(frozen=True)
class Assignment:
    """One ``NAME=VALUE`` of a variable: ``[section.name] key = value``."""

    variable: str
    section: str
    name: str
    key: str
    value: Any


def assignments(environ: Mapping[str, str],
                keys: Mapping[str, Mapping[str, str]]) -> list[Assignment]:
    """Every assignment the environment makes, in variable order.

    Args:
        environ: the process environment.
        keys: section -> {key: type annotation} of the keys (and aliases) it takes.

    Raises:
        ConfigError: naming the variable: an unknown key, a pair that is not
            ``NAME=VALUE``, a name given twice or a value not of the key's type.
    """
    found: list[Assignment] = []
    for variable in sorted(environ):
        prefix = next((p for p in PREFIXES if variable.startswith(p)), None)
        if prefix is None or variable in OTHER_VARIABLES or not environ[variable].strip():
            continue
        section = PREFIXES[prefix]
        key = variable[len(prefix):].lower()
        if key not in keys[section]:
            raise ConfigError(
                f"{variable}: unknown [{section}.NAME] key '{key}' (known: "
                f"{', '.join(sorted(keys[section]))}); write {prefix}<KEY>=NAME=VALUE,..., "
                f"e.g. {prefix}CONCURRENCY=emails=2")
        seen: set[str] = set()
        for pair in environ[variable].split(","):
            name, sep, text = (part.strip() for part in pair.partition("="))
            if not sep or not _NAME.match(name):
                raise ConfigError(f"{variable}: {pair.strip()!r} is not NAME=VALUE "
                                  f"(e.g. {variable}=emails=2)")
            if name in seen:
                raise ConfigError(f"{variable}: {name!r} is given twice")
            seen.add(name)
            where = f"{variable}: [{section}.{name}] {key}"
            found.append(Assignment(variable, section, name, key,
                                    typed(text, keys[section][key], where)))
    return found


def typed(text: str, annotation: str, where: str) -> Any:
    """A variable's text as the key's type (``int``, ``float``, ``bool``, ``str``)."""
    if annotation.startswith("bool"):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigError(f"{where}: expected true or false, got {text!r}")
    if annotation.startswith("int"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a whole number, got {text!r}") from None
    if annotation.startswith("float"):
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"{where}: expected a number, got {text!r}") from None
    return text
