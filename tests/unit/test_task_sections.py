"""``[tasks.NAME]``: an operator changes a task's limits and options without a code change."""

from __future__ import annotations

import logging
import sys
from dataclasses import replace

import pytest

from runner.errors import ConfigError
from runner.flow import Rate
from runner.runner_huey import RunnerHuey
from runner.settings_loader import load_settings
from runner.task import RunnerTaskWrapper, unknown_task_sections
from runner.task_options import task_flow


def settings_from(tmp_path, text):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def registry_with_tasks(name: str) -> RunnerHuey:
    """A runner with ``report`` (1 at a time, 5/s), ``sync`` (2 per user) and plain ``mail``."""
    huey = RunnerHuey(name)

    def report(): ...

    def sync(user_id): ...

    def mail(to): ...

    RunnerTaskWrapper(huey, report, name="report", options={},
                      flow=task_flow("report", 1, None, "5/s"))
    RunnerTaskWrapper(huey, sync, name="sync", options={},
                      flow=task_flow("sync", 2, lambda user_id: user_id, None))
    RunnerTaskWrapper(huey, mail, name="mail", options={"timeout": 5})
    return huey


def test_a_task_section_sets_limits_a_task_did_not_declare(tmp_path):
    huey = registry_with_tasks("limits-added")
    settings = settings_from(tmp_path, '[tasks.mail]\nconcurrency = 3\nrate_limit = "100/m"\n')
    limits = huey.task_registry.flow_limits(settings)
    assert limits.task_concurrency == {"report": 1, "mail": 3}
    assert limits.task_rates == {"report": Rate(5, 1), "mail": Rate(100, 60, burst=1)}


def test_a_task_section_wins_over_the_decorator_and_zero_or_empty_lifts_a_limit(tmp_path):
    huey = registry_with_tasks("limits-changed")
    settings = settings_from(tmp_path, (
        '[tasks.report]\nconcurrency = 0\nrate_limit = "2/s burst 4"\n'
        '[tasks.sync]\nconcurrency = 1\n'))
    limits = huey.task_registry.flow_limits(settings)
    assert limits.task_concurrency == {}
    assert limits.key_concurrency == {"sync": 1}  # still per user: the key is the code's
    assert limits.task_rates == {"report": Rate(2, 1, burst=4)}
    lifted = settings_from(tmp_path, '[tasks.report]\nrate_limit = ""\n')
    assert huey.task_registry.flow_limits(lifted).task_rates == {}


def test_settings_made_where_freed_settings_were_get_their_own_limits(tmp_path, monkeypatch):
    # Settings loaded afresh (an operator's edit, a test's reconfigure) often take the
    # memory of settings just freed, as each copy below takes the one before it in
    # CPython; every object having one id() makes that so on any interpreter.
    monkeypatch.setattr(sys.modules["runner.task"], "id", lambda _: 1, raising=False)
    huey = registry_with_tasks("limits-reloaded")
    one = settings_from(tmp_path, '[tasks.mail]\nrate_limit = "1/m"\n')
    two = settings_from(tmp_path, '[tasks.mail]\nrate_limit = "2/m"\n')
    for _ in range(3):
        assert huey.task_registry.flow_limits(replace(one)).task_rates["mail"].count == 1
        assert huey.task_registry.flow_limits(replace(two)).task_rates["mail"].count == 2


def test_settings_made_where_freed_settings_were_get_their_own_task_options(tmp_path,
                                                                        monkeypatch):
    # Here the copies' memory is taken by other objects between the calls; every object
    # having one id() stands for the address a freed Settings leaves to the next.
    monkeypatch.setattr(sys.modules["runner.task"], "id", lambda _: 1, raising=False)
    huey = registry_with_tasks("options-reloaded")
    mail = huey.task_registry.find("mail")
    bulk = settings_from(tmp_path, '[tasks.mail]\nqueue = "bulk"\n')
    urgent = settings_from(tmp_path, '[tasks.mail]\nqueue = "urgent"\n')
    for _ in range(3):
        assert mail.resolve(replace(bulk)).queue == "bulk"
        assert mail.resolve(replace(urgent)).queue == "urgent"


def test_queue_priority_retries_and_timeout_come_from_the_section(tmp_path):
    huey = registry_with_tasks("options-changed")
    settings = settings_from(tmp_path, (
        '[tasks.mail]\nqueue = "bulk"\npriority = 7\nretries = 9\ntimeout = 60\n'))
    options = huey.task_registry.find("mail").resolve(settings)
    assert (options.queue, options.priority, options.policy.retry_limit, options.timeout) == (
        "bulk", 7, 9, 60.0)
    assert "concurrency" not in settings.task_override("mail").as_options()


@pytest.mark.parametrize(("text", "message"), [
    ('[tasks.mail]\nconcurrency = "2"\n', "[tasks.mail] concurrency: expected a whole number"),
    ("[tasks.mail]\nconcurrency = -1\n", "[tasks.mail] concurrency must not be negative"),
    ('[tasks.mail]\nrate_limit = "lots"\n', "[tasks.mail] rate_limit 'lots' is not a rate"),
    ("[tasks.mail]\nrate_limit = 5\n", "[tasks.mail] rate_limit: expected a string"),
    ("[tasks.mail]\nconcurency = 1\n", "[tasks.mail]: unknown key 'concurency'"),
    ('[events.handlers.h]\nconcurrency = 1\n', "[events.handlers.h]: unknown key 'concurrency'"),
])
def test_a_bad_task_section_names_the_task_and_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, text)
    assert message in str(error.value) and error.value.exit_code == 78


def test_an_unknown_task_key_is_told_the_aliases_the_section_takes(tmp_path):
    with pytest.raises(ConfigError) as error:
        settings_from(tmp_path, "[tasks.mail]\nretires = 2\n")
    assert "retry_limit, max_retries, retries," in str(error.value)


@pytest.mark.parametrize("queue", ["emails high", "mail!", "x" * 65])
def test_the_decorator_refuses_a_queue_name_no_section_or_pause_could_name(tmp_path, queue):
    # [queues.NAME], [tasks.NAME] queue and `queues pause` all refuse such a name, so a
    # task put on it could never be configured or paused.
    from runner import task

    with pytest.raises(ConfigError, match=r"task 'mail': .* is not a valid queue name"):
        task(queue=queue, name="mail")(lambda: None)
    with pytest.raises(ConfigError, match="is not a valid queue name"):
        settings_from(tmp_path, f'[tasks.mail]\nqueue = "{queue}"\n')


def test_sections_naming_no_registered_task_are_found(tmp_path):
    huey = registry_with_tasks("unknown-sections")
    settings = settings_from(tmp_path, "[tasks.mail]\ntimeout = 1\n[tasks.mial]\ntimeout = 1\n"
                                       "[tasks.gone]\nconcurrency = 1\n")
    assert unknown_task_sections(settings, huey.task_registry) == ["gone", "mial"]


def test_a_worker_warns_of_a_section_naming_no_task_it_loaded(tmp_path, caplog):
    from runner.worker.manager import warn_unknown_task_sections

    huey = registry_with_tasks("worker-warning")
    settings = settings_from(tmp_path, "[tasks.mial]\nconcurrency = 1\n")
    with caplog.at_level(logging.WARNING):
        warn_unknown_task_sections(settings, huey.task_registry)
    assert "[tasks.mial] names no task" in caplog.text


def test_a_section_a_variable_made_is_blamed_on_the_variable_not_the_file(tmp_path, caplog):
    from runner.worker.manager import warn_unknown_task_sections

    huey = registry_with_tasks("variable-warning")
    path = tmp_path / "settings.toml"
    path.write_text("[tasks.mial]\nconcurrency = 1\n")
    settings = load_settings(path, environ={"WORKER_TASK_TIMEOUT": "nosuch=3,mial=2"})
    assert settings.origin_of("tasks", "nosuch") == "WORKER_TASK_TIMEOUT"
    assert settings.origin_of("tasks", "mial") == str(path)  # the file made it
    with caplog.at_level(logging.WARNING):
        warn_unknown_task_sections(settings, huey.task_registry)
    assert "WORKER_TASK_TIMEOUT: [tasks.nosuch] names no task" in caplog.text
    assert f"{path}: [tasks.mial] names no task" in caplog.text
