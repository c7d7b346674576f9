"""Log records emitted inside jobs are stamped, stored with the job and capped."""

from __future__ import annotations

import importlib
import logging
import logging.handlers

import pytest

from runner.cli import main as cli
from runner.errors import ConfigError
from runner.settings_loader import parse_settings
from runner.store.sqlite import logs as logstore
from runner.testing import drain
from runner.worker.log_capture import install_output_capture, uninstall_output_capture
from runner.worker.log_config import LineFormatter, LoggingSection, build_config, logging_settings
from runner.worker.log_sink import LogSink
from tests import jobs


@pytest.fixture
def sink(huey):
    def make(**options):
        section = LoggingSection(**options)
        handler = LogSink(huey.jobs.store, section, worker="test-worker")
        root = logging.getLogger()
        root.addHandler(handler)
        old_level = root.level
        root.setLevel(logging.INFO)
        logging.getLogger("huey").setLevel(logging.WARNING)  # as the worker's config does
        install_output_capture()
        made.append((handler, old_level))
        return handler

    made: list = []
    yield make
    uninstall_output_capture()
    logging.getLogger("huey").setLevel(logging.NOTSET)
    for handler, level in made:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(level)
        handler.stop()


def messages(huey, job_id):
    return [(r.level, r.logger, r.message, r.task)
            for r in logstore.read_logs(huey.jobs.db, logstore.LogFilter(job_id=job_id))]


def test_sync_and_async_job_lines_are_stored_with_their_job(huey, sink, capsys):
    # Given a sink and print capture, when a sync and an async task log and print
    store = sink()
    sync, async_ = jobs.chatty("a"), jobs.async_chatty("b")
    assert drain() == 2
    store.flush()
    # Then every line is stored with its own job and task
    assert messages(huey, sync.id) == [
        (logging.INFO, "tests.jobs", "sync says a", "chatty"),
        (logging.INFO, "stdout", "printed a", "chatty"),
        (logging.WARNING, "tests.jobs", "careful a", "chatty")]
    assert messages(huey, async_.id) == [
        (logging.INFO, "tests.jobs", "async says b", "async_chatty"),
        (logging.INFO, "stdout", "async printed b", "async_chatty")]
    # And `logs --job` shows them
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "logs", "--job", sync.id[-12:]]) == 0
    out = capsys.readouterr().out
    assert "sync says a" in out and "printed a" in out and "careful a" in out
    assert "async says b" not in out
    assert cli(["--settings", str(huey.settings.path), "logs", "--task", "async_chatty",
                "--level", "info"]) == 0
    assert "async printed b" in capsys.readouterr().out


def test_lines_from_code_an_async_job_runs_in_a_thread_are_stored_with_the_job(huey, sink):
    # Given a sink, when an async task logs and prints from asyncio.to_thread
    store = sink()
    result = jobs.async_chatty_in_a_thread("c")
    assert drain() == 1
    store.flush()
    # Then the lines are the job's, as if its own thread had written them
    assert messages(huey, result.id) == [
        (logging.INFO, "tests.jobs", "thread says c", "async_chatty_in_a_thread"),
        (logging.INFO, "stdout", "thread printed c", "async_chatty_in_a_thread")]


def test_the_line_saying_a_job_is_dead_is_stored_with_the_job(huey, sink):
    # Given a task that always fails, with two retries
    store = sink()
    result = jobs.always_fails("d")
    # When it runs until it is dead
    drain(include_scheduled=True, timeout=10)
    store.flush()
    # Then the worker's last word on it is kept with its other lines
    stored = [(m, task) for _, logger, m, task in messages(huey, result.id)
              if logger == "runner.huey_consumer"]
    assert stored[-1] == (f"job {result.id} (always_fails) is dead after 3 attempt(s): "
                          "always fails d", "always_fails")
    assert sum("retries in" in m for m, _ in stored) == 2


def test_print_outside_a_job_passes_through(huey, sink, capsys):
    sink()
    print("plain output")
    assert "plain output" in capsys.readouterr().out


def test_worker_records_are_stored_without_a_job(huey, sink):
    store = sink()
    logging.getLogger("runner.worker.manager").warning("worker line")
    store.flush()
    rows = logstore.read_logs(huey.jobs.db, logstore.LogFilter(worker_only=True))
    assert [(r.message, r.job_id, r.worker) for r in rows] == [
        ("worker line", None, "test-worker")]


def test_a_line_holding_undecodable_bytes_is_stored_escaped_with_the_lines_around_it(
        huey, sink, capsys):
    # Given a job that prints and logs a file name whose bytes are not UTF-8
    store = sink()
    result, other = jobs.logs_an_undecodable_name("a"), jobs.chatty("b")
    assert drain() == 2
    store.flush()
    # Then its lines, and those of the batch they were written with, are all stored
    assert [m for _, _, m, _ in messages(huey, result.id)] == [
        "before a", "reading caf\\udce9.txt", "file: caf\\udce9.txt", "after a"]
    assert len(messages(huey, other.id)) == 3
    assert store.dropped == 0


def test_per_job_cap_keeps_the_first_lines_and_says_the_rest_were_dropped(huey, sink):
    store = sink(job_max_bytes=1000)
    big = jobs.log_lines(50, 100)
    small = jobs.log_lines(3, 10)
    drain()
    store.flush()
    stored = messages(huey, big.id)
    assert sum(len(m) for _, _, m, _ in stored[:-1]) <= 1000
    assert "job_max_bytes (1000) reached" in stored[-1][2]
    assert len(stored) < 15
    assert len(messages(huey, small.id)) == 3


def test_total_cap_trims_the_oldest_rows(huey, sink):
    store = sink(max_rows=100, job_max_bytes=0)
    jobs.log_lines(400, 5)
    drain()
    store.flush()
    (count,) = huey.jobs.db.query("SELECT count(*) FROM runner_log")[0]
    (oldest,) = huey.jobs.db.query("SELECT min(message) FROM runner_log "
                                   "WHERE message LIKE 'line 3%'")[0]
    assert count <= 100 + 100  # trimmed every max_rows // 20 (>= 100) rows
    assert oldest is not None  # the newest lines survive


def test_messages_are_cut_at_message_max_bytes(huey, sink):
    store = sink(message_max_bytes=50)
    result = jobs.log_lines(1, 500)
    drain()
    store.flush()
    (_, _, message, _), = messages(huey, result.id)
    assert message.endswith("[cut at 50 bytes]") and len(message) < 80


def _handler_class(config: dict) -> type:
    module, _, name = config["class"].rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_logging_section_is_validated_and_builds_rotation_handlers(tmp_path):
    settings = parse_settings({"logging": {"rotation": "watched", "file": "w.log"}},
                              source=str(tmp_path / "settings.toml"))
    config = build_config(settings, logging_settings(settings))
    assert issubclass(_handler_class(config["handlers"]["file"]),
                      logging.handlers.WatchedFileHandler)
    assert config["handlers"]["file"]["filename"] == str(tmp_path / "w.log")
    size = parse_settings({"logging": {"max_bytes": 1000}})
    handler = build_config(size, logging_settings(size))["handlers"]["file"]
    assert issubclass(_handler_class(handler), logging.handlers.RotatingFileHandler)
    assert handler["maxBytes"] == 1000
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        logging_settings(parse_settings({"logging": {"colour": True}}))
    with pytest.raises(ConfigError, match="rotation"):
        logging_settings(parse_settings({"logging": {"rotation": "daily"}}))
    with pytest.raises(ConfigError, match="expected true or false"):
        logging_settings(parse_settings({"logging": {"store": "yes"}}))


@pytest.mark.parametrize("rotation", ["size", "watched", "none"])
def test_worker_log_file_escapes_bytes_that_are_not_utf8(tmp_path, rotation):
    # Given the worker.log handler the settings build
    settings = parse_settings({"logging": {"file": "w.log", "rotation": rotation}},
                              source=str(tmp_path / "settings.toml"))
    spec = dict(build_config(settings, logging_settings(settings))["handlers"]["file"])
    handler_class = _handler_class(spec)
    for key in ("class", "formatter", "filters"):
        del spec[key]
    handler = handler_class(**spec)
    handler.setFormatter(LineFormatter("%(levelname)s %(message)s"))
    failed: list[logging.LogRecord] = []
    handler.handleError = failed.append
    # When a record names a file whose bytes are not UTF-8
    handler.emit(logging.makeLogRecord({"msg": "reading %s", "args": (jobs.UNDECODABLE_NAME,),
                                        "levelname": "WARNING"}))
    handler.close()
    # Then the line is written, the bytes escaped, instead of a logging error
    assert failed == []
    assert (tmp_path / "w.log").read_text() == "WARNING reading caf\\udce9.txt\n"


def test_logs_prints_a_record_on_one_line_as_worker_log_does_and_its_traceback_indented(
        huey, sink, capsys):
    # Given a job's line whose message holds a newline and an escape sequence, and one
    # logged with the traceback of an error
    store = sink()
    log = logging.getLogger("tests.evil")
    stamp = {"job_id": "job-1", "task_name": "evil"}
    log.warning("bad\nnews\x1b[2J", extra=stamp)
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("it failed", extra=stamp)
    store.flush()
    # When the task's lines are listed
    capsys.readouterr()
    assert cli(["--settings", str(huey.settings.path), "logs", "--task", "evil"]) == 0
    out = capsys.readouterr().out
    # Then the message is one line with its controls escaped, as in worker.log
    assert "\x1b" not in out
    (bad,) = [line for line in out.splitlines() if "bad" in line]
    assert bad.endswith(": bad\\nnews\\x1b[2J"), out
    # And a traceback follows its record, every line of it indented
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith(": it failed"))
    assert lines[start + 1] == "    | Traceback (most recent call last):", out
    assert lines[-1] == "    | ValueError: broken", out
    assert all(line.startswith("    | ") for line in lines[start + 1:]), out
