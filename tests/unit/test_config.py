"""settings.toml and environment overrides become one frozen, validated Settings."""

from __future__ import annotations

import dataclasses
import re

import pytest

from runner import settings_environment, settings_loader
from runner.cli import main
from runner.config import DatabaseSection, RunnerSection, WorkerSection
from runner.errors import ConfigError
from runner.sections import EventSettings, QueueSection, ScheduleOverride, TaskOverride, TaskSection
from runner.service_sections import (
    HealthSection,
    LoggingSection,
    MetricsSection,
    RetentionSection,
    TuiSection,
)
from runner.settings_loader import load_settings
from tests.process.test_settings import CASES


def write(tmp_path, text):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_defaults_match_the_seed_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    w = settings.worker
    assert (w.max_concurrent_tasks, w.retry_limit, w.timeout, w.queue_size) == (10, 3, 300, 1000)
    assert (w.queue_type, settings.runner.database) == ("sqlite", "jobs.db")
    assert settings.database_path == (tmp_path / "jobs.db").absolute()


def test_settings_are_frozen(tmp_path):
    settings = load_settings(write(tmp_path, ""), environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.worker.retry_limit = 9


def test_database_path_is_relative_to_the_settings_file(tmp_path):
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "settings.toml"
    path.write_text('[runner]\ndatabase = "data/jobs.db"\n')
    assert load_settings(path, environ={}).database_path == tmp_path / "conf" / "data" / "jobs.db"


def test_environment_overrides_win(tmp_path):
    settings = load_settings(write(tmp_path, "[worker]\nmax_concurrent_tasks = 3\n"), environ={
        "WORKER_CONCURRENCY": "7", "WORKER_LOG_LEVEL": "debug", "WORKER_QUEUE_TYPE": "SQLite",
        "RUNNER_DATABASE": "/tmp/other.db"})
    assert settings.worker.max_concurrent_tasks == 7
    assert settings.worker.log_level == "DEBUG"
    assert settings.worker.queue_type == "sqlite"
    assert str(settings.database_path) == "/tmp/other.db"


def test_runner_settings_env_names_the_file(tmp_path):
    path = write(tmp_path, "[worker]\nretry_limit = 9\n")
    assert load_settings(environ={"RUNNER_SETTINGS": str(path)}).worker.retry_limit == 9
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"RUNNER_SETTINGS": str(tmp_path / "missing.toml")})


def test_task_overrides_and_the_max_retries_alias(tmp_path):
    settings = load_settings(write(tmp_path, (
        "[tasks.send_mail]\nmax_retries = 5\ntimeout = 12\nqueue = \"mail\"\n")), environ={})
    override = settings.task_override("send_mail")
    assert (override.retry_limit, override.timeout, override.queue) == (5, 12.0, "mail")
    assert settings.task_override("other").as_options() == {}


def test_redis_takes_queue_concurrency_and_rate_limits(tmp_path):
    settings = load_settings(write(tmp_path, (
        "[worker]\nqueue_type = \"redis\"\n[queues.mail]\nconcurrency = 2\n"
        "rate_limit = \"5/s\"\n")), environ={})
    assert (settings.queues["mail"].concurrency, settings.queues["mail"].rate_limit) == (2, "5/s")


@pytest.mark.parametrize(("text", "message"), [
    ("[worker\n", "TOML syntax error"),
    ("[worker]\nmax_concurent_tasks = 2\n", "unknown key 'max_concurent_tasks'"),
    ("[wroker]\n", "unknown section or key 'wroker'"),
    ("[worker]\nretry_limit = \"3\"\n", "retry_limit: expected a whole number"),
    ("[worker]\ntimeout = true\n", "timeout: expected float, got a boolean"),
    ("[worker]\nmax_concurrent_tasks = 0\n", "max_concurrent_tasks must be at least 1"),
    ("[worker]\nqueue_type = \"kafka\"\n", "queue_type 'kafka' is not supported"),
    ("[worker]\nqueue_type = \"redis\"\n[runner]\nredis_url = \"localhost:6379\"\n",
     "[runner] redis_url 'localhost:6379' is not a redis://"),
    ("[database]\nsynchronous = \"SOMETIMES\"\n", "synchronous 'SOMETIMES' is not one of"),
    ("[tasks.x]\ntimeuot = 3\n", "[tasks.x]: unknown key 'timeuot'"),
    ("[runner]\nimports = \"tasks\"\n", "imports: expected a list of strings"),
    ("[worker]\ntimeout = nan\n", "[worker] timeout: expected a finite number, got nan"),
    ("[worker]\nlease_seconds = inf\n", "[worker] lease_seconds: expected a finite number"),
    ("[tasks.x]\ntimeout = -inf\n", "[tasks.x] timeout: expected a finite number"),
    ("[retention]\ninterval = nan\n", "[retention] interval: expected a finite number"),
    ("[runner]\ntimezone = \"Mars/Olympus\"\n", "[runner] timezone 'Mars/Olympus' is not a "
                                                  "known time zone"),
    ("[runner]\ntimezone = \"../../etc/passwd\"\n", "[runner] timezone"),
    ("[runner]\nserializer = \"yaml\"\n", "[runner] serializer 'yaml' is not one of"),
    ("[queues.rl]\nrate_limit = \"10/s burst 20\"\nburst = 1\n",
     "[queues.rl] rate_limit '10/s burst 20' has burst 20 but burst = 1"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert message in str(error.value)
    assert str(path) in str(error.value) or "TOML" not in message
    assert error.value.exit_code == 78


@pytest.mark.parametrize(("text", "message"), [
    *CASES,
    ("[tui]\nrefresh = 0\n", "[tui] refresh must be a number of seconds greater than 0"),
    ("[tui]\nrefresh = nan\n", "[tui] refresh: expected a finite number, got nan"),
    ("[logging]\nstore = \"yes\"\n", "[logging] store: expected true or false"),
    ('[logging]\nformat = "%(nope)s"\n', "[logging] format is not a usable log format"),
    ("[retention]\nbatch_size = 0\n", "[retention] batch_size must be at least 1"),
    ("[retention]\nkeep = 1\n", "[retention]: unknown key 'keep'"),
    ("[health]\nmax_waiting_age = -1\n", "[health] max_waiting_age must not be negative"),
    ("[worker]\nmax_payload_mb = -1\n", "[worker] max_payload_mb must not be negative"),
    ('[metrics]\nlisten = "0.0.0.0:9100"\n', "[metrics] listen '0.0.0.0' is not a loopback"),
    ("[events]\ndispatch_priority = 1.5\n", "[events] dispatch_priority: expected a whole"),
    ("[events.handlers.h]\ntiemout = 1\n", "[events.handlers.h]: unknown key 'tiemout'"),
    ('[events.patterns."a..b"]\nqueue = "q"\n', "[events.patterns]"),
    ("[schedules.nightly]\ncrom = \"0 * * * *\"\n", "[schedules.nightly]: unknown key 'crom'"),
    ('[schedules.nightly]\nmisfire = "sometimes"\n', "[schedules.nightly] misfire must be one"),
    ("[schedules]\nnightly = 1\n", "[schedules] nightly must be a [schedules.nightly] table"),
])
def test_every_section_is_validated_at_load(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert message in str(error.value) and str(path) in str(error.value)
    assert error.value.exit_code == 78


def test_every_section_loads_into_one_frozen_typed_tree(tmp_path):
    settings = load_settings(write(tmp_path, (
        "[tui]\nrefresh = 2\n[logging]\nrotation = \"watched\"\n"
        "[metrics]\nlisten = \"127.0.0.1:9464\"\n[health]\nquick_check = false\n"
        "[retention]\ndead_days = 3\n[events]\ndedupe_window = 60\n"
        "[events.handlers.h]\ntimeout = 4\n[schedules.nightly]\nenabled = false\n")),
        environ={})
    assert settings.tui.refresh == 2.0 and isinstance(settings.tui.refresh, float)
    assert settings.logging.rotation == "watched"
    assert settings.metrics.listen == "127.0.0.1:9464"
    assert settings.health.quick_check is False
    assert settings.retention.dead_days == 3.0
    assert settings.events.dedupe_window == 60.0
    assert settings.events.override("h", "x.*") == {"timeout": 4.0}
    assert settings.schedules["nightly"].as_options() == {"enabled": False}
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.tui.refresh = 5  # type: ignore[misc]


def test_toml_syntax_errors_carry_the_line(tmp_path):
    with pytest.raises(ConfigError, match="line 3"):
        load_settings(write(tmp_path, "[worker]\nretry_limit = 1\nbroken =\n"), environ={})


def test_bad_environment_override_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="WORKER_CONCURRENCY"):
        load_settings(write(tmp_path, ""), environ={"WORKER_CONCURRENCY": "lots"})


def test_a_negative_concurrency_in_the_environment_is_told_its_bound(tmp_path):
    # -3 is a whole number: what is wrong with it is the bound, as in the file
    with pytest.raises(ConfigError, match="WORKER_CONCURRENCY: .*must be at least 1"):
        load_settings(write(tmp_path, ""), environ={"WORKER_CONCURRENCY": "-3"})


@pytest.mark.parametrize("environ, message", [
    ({"WORKER_CONCURENCY": "4"},
     "WORKER_CONCURENCY: unknown variable (known: WORKER_CONCURRENCY, WORKER_LOG_LEVEL, "
     "WORKER_QUEUE_TYPE, WORKER_QUEUE_<KEY>, WORKER_TASK_<KEY>)"),
    ({"WORKER_TIMEOUT": "5"},
     "WORKER_TIMEOUT: unknown variable (known: WORKER_CONCURRENCY, WORKER_LOG_LEVEL, "
     "WORKER_QUEUE_TYPE, WORKER_QUEUE_<KEY>, WORKER_TASK_<KEY>); "
     "[worker] timeout is set in the settings file"),
])
def test_an_unknown_worker_variable_is_refused_naming_it(tmp_path, environ, message):
    # Given a misspelt or unsupported WORKER_* variable, which would otherwise change nothing
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, ""), environ=environ)
    assert str(error.value) == message
    assert error.value.exit_code == 78


def test_an_empty_override_counts_as_unset(tmp_path):
    # As an env file line left blank to fill in later (WORKER_CONCURRENCY=) reads.
    path = write(tmp_path, '[worker]\nmax_concurrent_tasks = 6\nlog_level = "WARNING"\n')
    settings = load_settings(path, environ={
        "WORKER_CONCURRENCY": "", "WORKER_QUEUE_TYPE": " ", "WORKER_LOG_LEVEL": "",
        "RUNNER_DATABASE": "", "WORKER_CONCURENCY": " "})
    assert (settings.worker.max_concurrent_tasks, settings.worker.queue_type,
            settings.worker.log_level) == (6, "sqlite", "WARNING")


@pytest.mark.parametrize("environ, message", [
    ({"WORKER_CONCURRENCY": "0"},
     "WORKER_CONCURRENCY: [worker] max_concurrent_tasks must be at least 1"),
    ({"WORKER_QUEUE_TYPE": "mysql"},
     "WORKER_QUEUE_TYPE: [worker] queue_type 'mysql' is not supported"),
    ({"WORKER_LOG_LEVEL": "loud"}, "WORKER_LOG_LEVEL: [worker] log_level 'LOUD' is not one of"),
])
def test_an_override_out_of_range_names_its_variable(tmp_path, environ, message):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, ""), environ=environ)
    assert str(error.value).startswith(message), str(error.value)


def test_known_time_zones_are_accepted(tmp_path):
    settings = load_settings(write(tmp_path, "[runner]\ntimezone = \"Europe/Paris\"\n"),
                             environ={})
    assert settings.runner.timezone == "Europe/Paris"


def test_postgres_takes_a_url_from_the_file_or_the_environment(tmp_path):
    url = "postgresql://jobs@db.internal:5432/jobs"
    settings = load_settings(write(tmp_path, f'[runner]\ndatabase = "{url}"\n'
                                             '[worker]\nqueue_type = "postgres"\n'), environ={})
    assert settings.database_url == url
    settings = load_settings(write(tmp_path, ""), environ={
        "WORKER_QUEUE_TYPE": "postgres", "RUNNER_DATABASE": url, "RUNNER_NODE_NAME": "host-b"})
    assert (settings.database_url, settings.runner.node_name) == (url, "host-b")
    assert load_settings(write(tmp_path, ""), environ={}).database_url is None


@pytest.mark.parametrize(("text", "message"), [
    ('[worker]\nqueue_type = "postgres"\n',
     "[runner] database 'jobs.db' is not a PostgreSQL URL"),
    ('[runner]\ndatabase = "postgresql://x/y"\n',
     '[worker] queue_type is "sqlite" but [runner] database is a PostgreSQL URL'),
    ('[runner]\nnode_name = "host a"\n', "[runner] node_name 'host a' may hold only"),
    ('[runner]\ndatabase = "redis://127.0.0.1:6379/0"\n',
     '[worker] queue_type is "sqlite" but [runner] database is a Redis URL; set '
     'queue_type = "redis" (or WORKER_QUEUE_TYPE=redis)'),
    ('[runner]\ndatabase = "postgresql://x/y"\n[worker]\nqueue_type = "redis"\n',
     '[worker] queue_type is "redis" but [runner] database is a PostgreSQL URL; set '
     'queue_type = "postgres" (or WORKER_QUEUE_TYPE=postgres)'),
])
def test_a_database_that_does_not_fit_the_queue_type_is_refused(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value) and error.value.exit_code == 78


def test_redis_is_chosen_by_the_environment_with_its_url(tmp_path):
    settings = load_settings(write(tmp_path, "[runner]\nredis_prefix = \"shop\"\n"), environ={
        "WORKER_QUEUE_TYPE": "redis", "REDIS_URL": "redis://127.0.0.1:6390/2"})
    assert (settings.worker.queue_type, settings.runner.redis_url, settings.runner.redis_prefix) \
        == ("redis", "redis://127.0.0.1:6390/2", "shop")


@pytest.mark.parametrize(("text", "message"), [
    ("[database]\nbusy_timeout = -1\n", "[database] busy_timeout must not be negative"),
    ("[database]\nwrite_deadline = -1\n", "[database] write_deadline must not be negative"),
    ("[database]\njournal_size_limit = -2\n",
     "[database] journal_size_limit must not be negative (-1: no limit)"),
])
def test_a_negative_database_setting_is_named_by_its_own_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value), str(error.value)
    assert error.value.exit_code == 78


def test_no_journal_size_limit_is_minus_one(tmp_path):
    settings = load_settings(write(tmp_path, "[database]\njournal_size_limit = -1\n"), environ={})
    assert settings.database.journal_size_limit == -1


@pytest.mark.parametrize(("text", "message"), [
    ("[worker]\nprefetch = -1\n", "[worker] prefetch must not be negative"),
    ("[database]\nmax_page_count = -5\n", "[database] max_page_count must not be negative"),
])
def test_a_negative_prefetch_or_page_cap_is_refused_as_other_negatives(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, text), environ={})
    assert message in str(error.value), str(error.value)
    assert error.value.exit_code == 78


def test_a_settings_file_saved_with_a_byte_order_mark_loads(tmp_path):
    # As Windows editors save UTF-8; tomllib alone refuses the mark at line 1, column 1
    path = tmp_path / "settings.toml"
    path.write_bytes(b"\xef\xbb\xbf[worker]\nmax_concurrent_tasks = 2\n")
    assert load_settings(path, environ={}).worker.max_concurrent_tasks == 2


@pytest.mark.parametrize(("data", "where"), [
    (b"[worker]\nmax_concurrent_tasks = 2 # \xff\xfe\n", "byte 0xff at line 2, column 28"),
    # a character of several bytes earlier on the line is one column
    (b"[worker]\n# caf\xc3\xa9 \xe9t\xe9\n", "byte 0xe9 at line 2, column 8"),
    (b"\xef\xbb\xbf\x80", "byte 0x80 at line 1, column 1"),
])
def test_a_settings_file_that_is_not_utf8_is_refused_at_its_line_and_column(tmp_path, data,
                                                                            where):
    path = tmp_path / "settings.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(error.value) == f"{path}: not valid UTF-8: {where}; save the file as UTF-8"
    assert error.value.exit_code == 78


#: A value too large to work for each kind of numeric setting, and what is said of it.
TOO_LARGE = [
    ("[worker]\nmax_concurrent_tasks = 100000000000\n",
     "[worker] max_concurrent_tasks must be at most 1024 (threads), got 100000000000"),
    ("[worker]\nprefetch = 99999999999999999999\n", "[worker] prefetch must be at most 1024"),
    ("[worker]\npoll_interval = 1e10\n",
     "[worker] poll_interval must be at most 86400 seconds (a day), got 10000000000.0"),
    ("[worker]\ntimeout = 1e300\n", "[worker] timeout must be at most 31536000 seconds (a year)"),
    ("[worker]\nretry_limit = 99999999999999999999\n",
     "[worker] retry_limit must be at most 1000000000"),
    ("[worker]\nbackoff = 1e200\n", "[worker] backoff must be at most 100"),
    ("[worker]\nmax_memory_mb = 99999999999999999999\n",
     "[worker] max_memory_mb must be at most 9223372036854775807"),
    ("[worker]\nmax_payload_mb = 16384\n",
     "[worker] max_payload_mb must be at most 1024 MiB (a GiB: no backend stores a value "
     "that large), got 16384.0"),
    ("[database]\nbusy_timeout = 1e308\n",
     "[database] busy_timeout must be at most 86400 seconds (a day), got 1e+308"),
    ("[database]\nmax_page_count = 5000000000\n",
     "[database] max_page_count must be at most 4294967294 (pages)"),
    ("[queues.mail]\nblock_timeout = 1e10\n", "[queues.mail] block_timeout must be at most 86400"),
    ("[queues.mail]\nmax_size = 99999999999999999999\n", "[queues.mail] max_size must be at most"),
    ("[tasks.mail]\npriority = 9223372036854775808\n",
     "[tasks.mail] priority must be at most 9223372036854775807"),
    ("[tasks.mail]\npriority = -9223372036854775809\n",
     "[tasks.mail] priority must be at least -9223372036854775808"),
    ("[tasks.mail]\nretry_delay = 1e10\n", "[tasks.mail] retry_delay must be at most 31536000"),
    ("[logging]\nbackup_count = 100000000000\n", "[logging] backup_count must be at most 1000"),
    ("[logging]\nflush_interval = 1e10\n", "[logging] flush_interval must be at most 86400"),
    ("[retention]\ndead_days = 1e10\n", "[retention] dead_days must be at most 36500 days"),
    ("[retention]\ninterval = 1e10\n", "[retention] interval must be at most 86400"),
    ("[health]\nmax_waiting_age = 1e300\n", "[health] max_waiting_age must be at most 31536000"),
    ("[events]\nemit_deadline = 1e10\n", "[events] emit_deadline must be at most 86400"),
    ("[events]\ndispatch_priority = 9223372036854775808\n",
     "[events] dispatch_priority must be at most 9223372036854775807"),
    ("[events.handlers.h]\ntimeout = 1e10\n", "[events.handlers.h] timeout must be at most"),
    ("[schedules.nightly]\ngrace = 1e10\n", "[schedules.nightly] grace must be at most 31536000"),
    ("[tui]\nrefresh = 1e10\n", "[tui] refresh must be at most 86400 seconds (a day)"),
]


@pytest.mark.parametrize(("text", "message"), TOO_LARGE)
def test_a_number_too_large_to_work_is_refused_naming_its_bound(tmp_path, text, message):
    # Python takes any size of number; threads, waits, SQLite and datetime do not
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert str(error.value).startswith(f"{path}: {message}"), str(error.value)
    assert error.value.exit_code == 78


def test_the_payload_bound_defaults_to_16_mib_and_check_refuses_one_out_of_range(
        tmp_path, capsys):
    assert load_settings(write(tmp_path, ""), environ={}).worker.max_payload_mb == 16
    for text, said in [("max_payload_mb = 2048", "must be at most 1024 MiB"),
                       ("max_payload_mb = -0.5", "must not be negative")]:
        path = write(tmp_path, f"[worker]\n{text}\n")
        assert main(["--settings", str(path), "check"]) == 78
        assert f"{path}: [worker] max_payload_mb {said}" in capsys.readouterr().err
    path = write(tmp_path, "[worker]\nmax_payload_mb = 1024\n")
    assert main(["--settings", str(path), "check"]) == 0


@pytest.mark.parametrize(("environ", "message"), [
    ({"WORKER_CONCURRENCY": "99999999999999999999"},
     "WORKER_CONCURRENCY: [worker] max_concurrent_tasks must be at most 1024 (threads)"),
    ({"WORKER_QUEUE_BLOCK_TIMEOUT": "default=1e10"},
     "WORKER_QUEUE_BLOCK_TIMEOUT: [queues.default] block_timeout must be at most 86400"),
    ({"WORKER_TASK_TIMEOUT": "mail=1e300"},
     "WORKER_TASK_TIMEOUT: [tasks.mail] timeout must be at most 31536000"),
])
def test_an_override_too_large_to_work_names_its_variable(tmp_path, environ, message):
    with pytest.raises(ConfigError) as error:
        load_settings(write(tmp_path, ""), environ=environ)
    assert str(error.value).startswith(message), str(error.value)


#: Every section class, with a table header that builds it.
SECTION_HEADERS = {
    RunnerSection: "[runner]", WorkerSection: "[worker]", DatabaseSection: "[database]",
    QueueSection: "[queues.mail]", TaskSection: "[tasks.mail]",
    TaskOverride: "[events.handlers.h]", LoggingSection: "[logging]",
    MetricsSection: "[metrics]", HealthSection: "[health]", RetentionSection: "[retention]",
    EventSettings: "[events]", ScheduleOverride: "[schedules.nightly]", TuiSection: "[tui]"}
#: What a key needs beside it to be valid at its bound.
COMPANIONS = {"heartbeat_interval": "lease_seconds = 86400\n"}


def numeric_keys(cls):
    return [f.name for f in dataclasses.fields(cls)
            if str(f.type).split(" ")[0] in ("int", "float")]


def test_every_numeric_setting_declares_how_large_it_may_be():
    assert set(SECTION_HEADERS) >= {*settings_loader._SECTIONS.values(),
                                  *settings_environment._NAMED_CLASSES.values()}
    undeclared = [(cls.__name__, key) for cls in SECTION_HEADERS for key in numeric_keys(cls)
                  if key not in getattr(cls, "MAXIMA", {})]
    assert undeclared == []


@pytest.mark.parametrize(("cls", "key"), [
    (cls, key) for cls in SECTION_HEADERS for key in numeric_keys(cls)
    if cls.MAXIMA[key] is not None])
def test_a_setting_at_its_bound_loads_and_past_it_is_refused(tmp_path, cls, key):
    most = cls.MAXIMA[key]
    header = SECTION_HEADERS[cls]
    kind = str(next(f.type for f in dataclasses.fields(cls) if f.name == key))
    beyond = most.value + 1 if kind.startswith("int") else most.value * 2.0
    loaded = load_settings(write(tmp_path, f"{header}\n{key} = {most.value}\n"
                                           f"{COMPANIONS.get(key, '')}"), environ={})
    assert loaded is not None
    with pytest.raises(ConfigError, match=re.escape(f"{header} {key} must be at most {most}")):
        load_settings(write(tmp_path, f"{header}\n{key} = {beyond!r}\n"), environ={})
