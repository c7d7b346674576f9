"""Fixtures: a configured runner on a fresh SQLite file, and real worker subprocesses."""

from __future__ import annotations

import fcntl
import importlib
import importlib.util
import os
import py_compile
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from runner import configure, get_huey
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings

ROOT = Path(__file__).resolve().parent.parent

#: Each folder of tests is one kind, selectable with -m (see README, "Tests").
KINDS = {"unit": "unit", "process": "process", "tui": "tui", "conformance": "conformance"}


#: What the run's subprocesses import (workers, the CLI, the dashboard): compiled once per
#: run when the environment says not to write bytecode (see pytest_configure).
SUBPROCESS_IMPORTS = ("runner.cli", "runner.worker.main", "tui.app", "tests.jobs")
_PYCACHE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    """Compile what subprocesses import once for the whole run, when bytecode is not written.

    With PYTHONDONTWRITEBYTECODE set, each of the run's hundreds of worker and CLI
    subprocesses compiles the project again before doing anything. The run's first process
    compiles the project and every module those imports load into a folder of its own
    (PYTHONPYCACHEPREFIX, inherited by the xdist workers and every subprocess they start);
    nothing is written beside the sources. Each file is checked against the hash of its
    source at every import, so a source edited mid-run is compiled afresh; a module written
    by a test is never cached.
    """
    if (not os.environ.get("PYTHONDONTWRITEBYTECODE") or "PYTEST_XDIST_WORKER" in os.environ
            or os.environ.get("PYTHONPYCACHEPREFIX")):
        return
    for name in SUBPROCESS_IMPORTS:
        importlib.import_module(name)
    libraries = {Path(module.__file__) for module in list(sys.modules.values())
                 if str(getattr(module, "__file__", None) or "").endswith(".py")}
    project = {path for package in ("runner", "tui", "tests", "tasks")
               for path in (ROOT / package).rglob("*.py")}
    prefix = tempfile.mkdtemp(prefix="jobrunner-pyc-")
    before, sys.pycache_prefix = sys.pycache_prefix, prefix
    try:
        for source in sorted(libraries - project):
            # The prefix hides the files compiled beside installed modules: copy them there
            # (each still names its source's time and size, so a changed one is not used).
            sys.pycache_prefix = None
            compiled = Path(importlib.util.cache_from_source(str(source)))
            sys.pycache_prefix = prefix
            if compiled.is_file():
                target = Path(importlib.util.cache_from_source(str(source)))
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(compiled, target)
            else:
                py_compile.compile(str(source), quiet=1)
        for source in sorted(project):
            py_compile.compile(str(source), quiet=1,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    finally:
        sys.pycache_prefix = before
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    config.stash[_PYCACHE] = prefix


def pytest_unconfigure(config: pytest.Config) -> None:
    prefix = config.stash.get(_PYCACHE, None)
    if prefix is not None:
        del os.environ["PYTHONPYCACHEPREFIX"]
        shutil.rmtree(prefix, ignore_errors=True)


def _timeout(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    return float(marker.args[0]) if marker and marker.args else 0.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(here).parts[0]
        kind = KINDS.get(folder)
        assert kind is not None, f"{item.nodeid}: tests live in {sorted(KINDS)} by kind"
        item.add_marker(kind)
        if "make_worker" in getattr(item, "fixturenames", ()) and kind != "process":
            raise pytest.UsageError(f"{item.nodeid} starts a worker process: move it to "
                                    "tests/process/")
    # The long soak runs first, one every other test: a parallel run hands each worker
    # one of them at the start (xdist's load scheduling) instead of leaving them last.
    long = sorted((item for item in items if item.get_closest_marker("chaos")),
                  key=lambda item: -_timeout(item))  # the longest allowed first
    rest = [item for item in items if not item.get_closest_marker("chaos")]
    items[:] = [item for pair in zip(long, rest, strict=False) for item in pair]
    items += rest[len(long):] if len(rest) > len(long) else long[len(rest):]
    # The solo tests last: one that starts mid-run holds every other worker at the gate
    # until the tests they are running end, then runs alone; at the end of the run that
    # wait costs nothing, as no test is left for the others.
    items.sort(key=lambda item: item.get_closest_marker("solo") is not None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    """Captured output holding text that is not UTF-8 (a task printing a file name made of
    other bytes) is escaped in the report: pytest-xdist cannot send it to the main process
    and would end the whole run."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, content.encode("utf-8", "backslashreplace").decode("utf-8"))
                       for title, content in report.sections]


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """Under pytest-xdist, a ``solo`` test holds a lock every other test shares.

    Tests that measure wall-clock precision (a rate, a schedule's lag, watchdog gaps)
    are ``solo``: in a parallel run no other test of the suite loads the machine beside
    them. Outside the per-test timeout on purpose: waiting for the lock is not the test's
    time. A turnstile in front of the lock lets a waiting solo test in before tests
    that arrive after it (``flock`` alone would let shared holders starve it).
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:
        yield
        return
    # Each worker's --basetemp is a folder of the run's own temporary folder.
    root = Path(item.config.option.basetemp).parent
    solo = item.get_closest_marker("solo") is not None
    with (root / "solo.gate").open("a") as gate, (root / "solo.lock").open("a") as lock:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if solo:
            fcntl.flock(lock, fcntl.LOCK_EX)
            fcntl.flock(gate, fcntl.LOCK_UN)
        else:
            fcntl.flock(gate, fcntl.LOCK_UN)
            fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


FAST_SETTINGS = """
[runner]
database = "jobs.db"
imports = ["tests.jobs"]

[worker]
{worker}

[database]
synchronous = "NORMAL"
busy_timeout = 10
"""


def wait_for(condition: Callable[[], object], timeout: float = 30.0,
             interval: float = 0.01, message: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail the test at the deadline.

    The default deadline only bounds a failure: it is generous because a worker
    process can take seconds to start on a machine loaded by a parallel run."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_for_count(read: Callable[[], int], target: int, *, stall: float = 30.0,
                   interval: float = 0.2, message: str = "count") -> None:
    """Poll ``read()`` until it reaches ``target``; fail when it has not grown for
    ``stall`` seconds.

    For a backlog drained on a machine shared by a parallel run: how long the
    whole drain takes depends on the machine, but a drain that stops is a bug."""
    best, moved = read(), time.monotonic()
    while best < target:
        if time.monotonic() - moved >= stall:
            raise AssertionError(f"{message}: stuck at {best} of {target} for {stall:g}s")
        time.sleep(interval)
        now = read()
        if now > best:
            best, moved = now, time.monotonic()


def run_short_jobs_first(count: int = 100, timeout: float = 60.0) -> None:
    """Have the running worker settle ``count`` no-op jobs first.

    A worker claims jobs ahead of its threads (``prefetch``) only while its recent
    attempts are short, and it starts out taking them for long: a test of jobs held in
    a worker's buffer behind a long one needs it to have run short ones first."""
    from tests import jobs

    group = jobs.noop.map(range(count))
    assert group is not None, "results are off: the no-op jobs cannot be waited for"
    group.get(blocking=True, timeout=timeout)


WORKER_DEFAULTS: dict[str, object] = {
    "max_concurrent_tasks": 4, "retry_delay": 0.01, "jitter": 0, "shutdown_timeout": 5,
    "lease_seconds": 4, "heartbeat_interval": 0.5, "poll_interval": 0.5, "queue_size": 0}


def write_settings(directory: Path, *, worker: dict[str, object] | None = None,
                   extra: str = "", name: str = "settings.toml") -> Path:
    """A settings file with fast test timings; ``worker`` overrides [worker] keys."""
    values = {**WORKER_DEFAULTS, **(worker or {})}
    lines = "\n".join(f"{k} = {v!r}" if not isinstance(v, str) else f'{k} = "{v}"'
                       for k, v in values.items())
    path = directory / name
    path.write_text(FAST_SETTINGS.format(worker=lines) + extra)
    return path


def run_again_after_a_crash(huey) -> str:
    """A job with no retries whose first worker died mid-run: requeued (the crash is not
    charged to the retry budget) and running again as attempt 2."""
    from tests import jobs

    result = jobs.add(1, 1)
    store, now = huey.jobs.store, time.time()
    store.claim(now=now, owner="gone-host:1:1", lease_seconds=30, want=1)
    assert store.recover_orphans(crash_limit=3, now=now + 31).requeued == [result.id]
    store.claim(now=now + 31, owner="live-host:2:1", lease_seconds=30, want=1)
    row = store.get_job(result.id)
    assert (row.attempt, row.max_attempts, row.crashes) == (2, 1, 1)
    return result.id


def in_checkout_beside_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               env_file: Path) -> Path:
    """Work from a checkout with a settings file of its own, the service's environment
    file at ``env_file`` and no ``RUNNER_SETTINGS``/``RUNNER_DATABASE`` set; the checkout."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    write_settings(checkout)
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("RUNNER_ENV_FILE", str(env_file))
    monkeypatch.delenv("RUNNER_SETTINGS", raising=False)
    monkeypatch.delenv("RUNNER_DATABASE", raising=False)
    return checkout


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    return write_settings(tmp_path)


@pytest.fixture
def huey(tmp_path: Path, settings_file: Path) -> Iterator[RunnerHuey]:
    """The process-wide runner, pointed at a fresh database in tmp_path."""
    import tests.jobs  # noqa: F401 - registers the test tasks

    configure(load_settings(settings_file, environ={}))
    instance = get_huey()
    yield instance
    jobs = instance.jobs
    if jobs is not None:
        jobs.store.close()


@pytest.fixture
def record_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "record.txt"
    monkeypatch.setenv("TEST_RECORD_FILE", str(path))
    return path


def read_records(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


class WorkerProcess:
    """A real ``python run.py`` subprocess on the test's settings."""

    def __init__(self, directory: Path, settings: Path, env: dict[str, str],
                 args: tuple[str, ...] = ()) -> None:
        self.directory = directory
        self.log = directory / f"worker-{time.monotonic_ns()}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "--settings", str(settings), *args],
            cwd=directory, env=env, stdout=self._log_file, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.wait(10)

    def close(self) -> None:
        self._log_file.close()

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if not self._log_file.closed:
                self._log_file.close()


@pytest.fixture
def make_worker(tmp_path: Path, settings_file: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Factory of worker subprocesses; all are killed at the end of the test."""
    started: list[WorkerProcess] = []

    def make(*args: str, settings: Path | None = None, **env: str) -> WorkerProcess:
        environ = {k: v for k, v in os.environ.items()
                   if not k.startswith(("WORKER_", "RUNNER_"))}
        environ.update({"PYTHONPATH": str(ROOT), **env})
        worker = WorkerProcess(tmp_path, settings or settings_file, environ, args)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.kill()
        worker.close()
