"""Task functions used by the tests, importable by worker subprocesses too."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from runner import Fatal, Retry, task

#: Where tasks append what they did (one line per run), set by the tests.
RECORD_ENV = "TEST_RECORD_FILE"


def record(line: str) -> None:
    """Append a line atomically (O_APPEND) to the record file, if one is set."""
    path = os.environ.get(RECORD_ENV)
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


@task(retry_limit=0)
def add(a, b):
    return a + b


@task(retry_limit=0)
async def async_add(a, b):
    await asyncio.sleep(0.001)
    return a + b


@task(retry_limit=0)
def make_set(n):
    """A result only pickle can carry."""
    return set(range(n))


@task(retry_limit=0)
def noop(n=0):
    return None


@task(retry_limit=0, timeout=0.3)
def spin_forever():
    while True:
        pass


@task(retry_limit=0, timeout=0.3)
async def sleep_async(seconds):
    await asyncio.sleep(seconds)
    return "finished"


@task(retry_limit=0)
def sleep_then_record(seconds, label):
    time.sleep(seconds)
    record(label)
    return label


@task(retry_limit=2, retry_delay=0.01, jitter=0)
def always_fails(label="x"):
    record(f"fail {label}")
    raise ValueError(f"always fails {label}")


@task(retry_limit=0)
async def async_fails(label="x"):
    await asyncio.sleep(0)
    raise ValueError(f"async fails {label}")


#: A file name whose bytes are not UTF-8, as ``os.listdir`` gives it (a lone surrogate).
UNDECODABLE_NAME = os.fsdecode(b"caf\xe9.txt")


@task(retry_limit=1, retry_delay=0.01, jitter=0)
def fails_on_an_undecodable_name():
    """Fails as a task handling such a file would: the name is in the error message."""
    raise FileNotFoundError(f"no such file: {UNDECODABLE_NAME}")


@task(retry_limit=0)
def reports_progress_on_an_undecodable_name():
    from runner import progress

    progress(1, 2, UNDECODABLE_NAME)
    return 1


@task(retry_limit=0)
def logs_an_undecodable_name(label):
    """Prints and logs such a name between two ordinary lines."""
    print(f"before {label}")
    _log.warning("reading %s", UNDECODABLE_NAME)
    print("file:", UNDECODABLE_NAME)
    print(f"after {label}")
    return label


@task(retry_limit=2, retry_delay=30, jitter=0)
def fails_with_a_long_backoff(label="x"):
    """Like :func:`always_fails`, with a retry that cannot come due while a test runs."""
    record(f"fail {label}")
    raise ValueError(f"always fails {label}")


@task(retry_limit=1)
def asks_a_later_retry(label="x"):
    """Records ``label``, then asks to run again in a minute (past any test's wait)."""
    record(f"retry {label}")
    raise Retry(delay=60)


@task(retry_limit=5, retry_delay=0.01, jitter=0)
def fatal_fails():
    raise Fatal("cannot ever work")


@task(retry_limit=5, retry_delay=0.01, jitter=0, no_retry_on=(KeyError,))
def key_error():
    raise KeyError("missing")


@task(retry_limit=5, retry_delay=0.01, jitter=0, retry_on=(ConnectionError,))
def type_error():
    raise TypeError("not retried: not in retry_on")


_attempts: dict[str, int] = {}


@task(retry_limit=0)
def retry_twice(key):
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] < 3:
        raise Retry(delay=0)
    return _attempts[key]


@task(retry_limit=2, retry_delay=0.01, jitter=0, retry_on=(ConnectionError,))
def asks_a_retry_then_loses_its_connection(key):
    """Asks for another attempt once, then fails with an error its retry_on retries."""
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise Retry(delay=0)
    raise ConnectionError(f"attempt {_attempts[key]}")


def remember_failure(failure):
    record(f"fallback {failure.task} {failure.error_type} {failure.args}")


@task(retry_limit=1, retry_delay=0.01, jitter=0, on_failure=remember_failure)
def fails_with_fallback(n):
    raise RuntimeError(f"broken {n}")


@task(retry_limit=0)
def record_run(label):
    """Records the job id and attempt so duplicates can be told from retries."""
    from runner.runner_huey import current_job

    job = current_job()
    record(f"{label} {job.id if job else '-'} {job.attempt if job else 0}")
    return label


@task(retry_limit=0)
def crash_worker():
    os._exit(1)


@task(retry_limit=0)
def short_work(n):
    """A job of a few milliseconds that records every run with its attempt."""
    from runner.runner_huey import current_job

    job = current_job()
    time.sleep(0.002)
    record(f"{n} {job.attempt if job else 0}")
    return n


_log = logging.getLogger("tests.jobs")


@task(retry_limit=0)
def chatty(label):
    """Logs through logging and print, as a task author would."""
    _log.info("sync says %s", label)
    print(f"printed {label}")
    _log.warning("careful %s", label)
    return label


@task(retry_limit=0)
async def async_chatty(label):
    _log.info("async says %s", label)
    await asyncio.sleep(0.001)
    print(f"async printed {label}", end="")  # no newline: flushed at the end of the attempt
    return label


@task(retry_limit=0)
async def async_chatty_in_a_thread(label):
    """Calls blocking code with ``asyncio.to_thread``, as an async task should."""
    from runner import progress

    def blocking():
        _log.info("thread says %s", label)
        print(f"thread printed {label}")
        progress(1, 1, "from a thread")

    await asyncio.to_thread(blocking)
    return label


@task(retry_limit=0)
def log_lines(count, size=100):
    for i in range(count):
        _log.info("line %d %s", i, "x" * size)


@task(retry_limit=0)
def reports_progress(total, gate_file):
    """Reports progress, then waits until the test removes ``gate_file``."""
    from runner import progress

    for done in range(total + 1):
        progress(done, total, f"step {done}")
    deadline = time.monotonic() + 30
    while os.path.exists(gate_file) and time.monotonic() < deadline:
        time.sleep(0.01)
    return total


@task(retry_limit=0)
async def async_progress(total):
    from runner import progress

    for done in range(total + 1):
        progress(done, total)
        await asyncio.sleep(0)
    return total


@task(retry_limit=5, retry_delay=0.01, jitter=0)
def fails_then_works(counter_file, fail_times):
    """Fails its first ``fail_times`` attempts (counted in a file, across processes)."""
    fd = os.open(counter_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)
    attempts = os.path.getsize(counter_file)
    if attempts <= fail_times:
        raise ConnectionError(f"attempt {attempts} fails")
    return f"worked on attempt {attempts}"


@task(retry_limit=5, retry_delay=0.01, jitter=0)
def fails_then_returns_none(counter_file, fail_times):
    """As :func:`fails_then_works`, but the attempt that works returns None."""
    fails_then_works.call_local(counter_file, fail_times)


@task(retry_limit=0)
def wait_for_file(path, value):
    """Returns ``value`` once ``path`` exists (the test decides when the job ends)."""
    while not os.path.exists(path):
        time.sleep(0.01)
    return value


@task(retry_limit=3)
def record_then_wait(label, gate):
    """Records ``label`` as it starts, then runs until ``gate`` exists (a job the test
    knows is running, and ends when it decides)."""
    record(label)
    while not os.path.exists(gate):
        time.sleep(0.01)
    return label


@task(retry_limit=1, retry_delay=0.01, jitter=0)
def record_then_fail_at_gate(label, gate):
    """Records ``label`` as it starts, then fails once ``gate`` exists (one retry)."""
    record(label)
    while not os.path.exists(gate):
        time.sleep(0.01)
    raise ValueError(f"{label} failed")


@task(retry_limit=0)
def record_then_sleep(label, seconds):
    """Records ``label`` as it starts, then sleeps (a job the test knows is running)."""
    record(label)
    time.sleep(seconds)
    return label


@task(retry_limit=0, timeout=1)
def block_in_c(label, seconds=10**6):
    """Records ``label``, then blocks in one C call that a timeout cannot interrupt."""
    record(label)
    time.sleep(seconds)
    return label


@task(retry_limit=1, retry_delay=0.1, timeout=1)
def block_in_c_retried(label, seconds=10**6):
    """:func:`block_in_c` with one retry: each attempt is stuck past its timeout."""
    record(label)
    time.sleep(seconds)
    return label


@task(retry_limit=0, timeout=1)
def catch_timeout(label):
    """Records ``label``, then swallows every exception, its timeout's too, for good."""
    record(label)
    while True:
        try:
            time.sleep(0.1)
        except Exception:  # noqa: S110 - what this task is for
            pass


@task(retry_limit=0, timeout=0)
def block_untimed(label, seconds=10**6):
    """Like :func:`block_in_c` without a timeout: a long job, not a stuck one."""
    record(label)
    time.sleep(seconds)
    return label


@task(retry_limit=0, unique=True)
def unique_report(n):
    record(f"report {n}")
    return n


@task(retry_limit=0, unique_key=lambda user, n=0: f"user:{user}", unique_for=60)
def per_user(user, n=0):
    record(f"user {user} {n}")
    return n


@task(retry_limit=0, queue="mail")
def mail_record(label):
    record(label)


@task(retry_limit=3, timeout=0)
async def cancellable_async(label):
    record(f"start {label}")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        record(f"cancelled {label}")
        raise
    record(f"end {label}")


@task(retry_limit=3, timeout=0)
def cooperative_sync(label):
    from runner import current_job

    record(f"start {label}")
    job = current_job()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if job is not None and job.cancelled:
            record(f"saw cancel {label}")
            return "stopped early"
        time.sleep(0.01)
    record(f"end {label}")


@task(retry_limit=3, timeout=0)
def stubborn_sync(label):
    record(f"start {label}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sum(range(100))
    record(f"end {label}")


@task(retry_limit=3, retry_delay=0.01, jitter=0)
def gives_up():
    from runner import JobCancelled

    raise JobCancelled("no longer needed")


@task(retry_limit=2, retry_delay=0.01, jitter=0, timeout=0)
def first_attempt_fails_late(label, gate_file):
    """Records ``label`` and its attempt as it starts; the first attempt waits for
    ``gate_file`` and then fails, the others succeed at once."""
    attempt = sum(1 for line in _records() if line.startswith(label)) + 1
    record(f"{label} {attempt}")
    if attempt > 1:
        return f"attempt {attempt}"
    while not os.path.exists(gate_file):
        time.sleep(0.01)
    raise ConnectionError("the first attempt fails, late")


def _records() -> list[str]:
    path = os.environ.get(RECORD_ENV)
    if not path or not os.path.exists(path):
        return []
    with open(path) as lines:
        return lines.read().splitlines()


class EscapesExceptionHandlers(BaseException):  # noqa: N818 - named for what it does
    """A BaseException subclass a library might raise: not caught by ``except Exception``."""


@task(retry_limit=1, retry_delay=0.01, jitter=0)
def leaves_the_attempt(how):
    """Lets a BaseException that is not an Exception out of the task, one kind per ``how``."""
    record(f"{how} runs")
    if how == "sys.exit":
        sys.exit(3)
    if how == "KeyboardInterrupt":
        raise KeyboardInterrupt
    raise EscapesExceptionHandlers("past every except Exception")


@task(retry_limit=1, retry_delay=0.01, jitter=0)
async def async_leaves_the_attempt(how):
    """The ``async def`` side: ``sys.exit()`` or a CancelledError the runner did not ask for."""
    record(f"async {how} runs")
    if how == "sys.exit":
        sys.exit(4)
    loop = asyncio.get_running_loop()
    inner = loop.create_future()
    loop.call_soon(inner.cancel)  # e.g. a client library cancelling its own request
    await inner


@task(retry_limit=2, retry_delay=0.01, jitter=0)
def returns_what_pickle_cannot_carry():
    return lambda: "a local function"


class Unprintable(Exception):
    """An error whose text cannot be had: its ``__str__`` and ``__repr__`` raise."""

    def __str__(self):
        raise ValueError("no str for this error")

    def __repr__(self):
        raise ValueError("no repr either")


@task(retry_limit=1, retry_delay=0.01, jitter=0)
def fails_with_an_unprintable_error():
    raise Unprintable("hidden")


@task(retry_limit=0)
async def leaves_a_task_running(label):
    """Starts an asyncio task and returns without awaiting it."""
    async def background():
        try:
            await asyncio.sleep(0.5)
            record(f"{label} background ran")
        except asyncio.CancelledError:
            record(f"{label} background cancelled")
            raise

    _started.append(asyncio.get_running_loop().create_task(background()))
    return "returned"


_started: list = []  # the loop keeps only weak references to its tasks


@task(retry_limit=0, timeout=0)
async def awaits_a_while(label, seconds):
    from runner import current_job

    record(f"{label} start {current_job().id}")
    await asyncio.sleep(seconds)
    record(f"{label} end")
    return label


def _spin(label, seconds=60):
    record(f"start {label}")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(100))
    record(f"end {label}")


@task(retry_limit=0, timeout=1)
async def spins_past_its_timeout(label):
    """An async def task that never awaits: a CPU loop (or blocking code) in async def."""
    _spin(label)


@task(retry_limit=3, timeout=0)
async def stubborn_async(label):
    """Never awaits, so a cancel cannot reach it at an await."""
    _spin(label)


@task(retry_limit=1, retry_delay=0.01, jitter=0)
def hands_on_a_number(label):
    """Succeeds; the next step of its pipeline cannot be made from what it returns."""
    record(f"{label} runs")
    return 7


@task(retry_limit=0, concurrency=1, concurrency_key=lambda order: order["id"])
def per_order(order):
    return order


@task(retry_limit=0, on_failure=remember_failure)
def kills_its_worker(label):
    """Ends the worker process mid-attempt; its on_failure records the job's death."""
    record(f"{label} runs")
    os._exit(1)


@task(retry_limit=0, timeout=1, on_failure=remember_failure)
def stuck_with_a_fallback(label):
    """Blocks in one call into C past its timeout; its on_failure records the death."""
    record(f"{label} runs")
    time.sleep(10**6)
