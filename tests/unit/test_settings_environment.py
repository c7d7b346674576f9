"""``WORKER_QUEUE_<KEY>`` and ``WORKER_TASK_<KEY>``: ``[queues.NAME]`` and ``[tasks.NAME]``
keys from the environment, ``NAME=VALUE`` pairs, checked as the file is."""

from __future__ import annotations

import pytest

from runner.errors import ConfigError
from runner.flow import Rate
from runner.settings_loader import load_settings


def load(tmp_path, text="", **environ):
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return load_settings(path, environ=environ)


def test_a_queue_key_is_set_per_queue_name_underscores_and_dots_included(tmp_path):
    settings = load(tmp_path, WORKER_QUEUE_CONCURRENCY="emails=2, bulk_mail=5,reports.daily=1",
                    WORKER_QUEUE_RATE_LIMIT="emails=100/m burst 20",
                    WORKER_QUEUE_ON_FULL="bulk_mail=drop_oldest", WORKER_QUEUE_PAUSED="emails=true")
    emails, bulk = settings.queues["emails"], settings.queues["bulk_mail"]
    assert (emails.concurrency, emails.rate, emails.paused) == (2, Rate(100, 60, 20), True)
    assert (bulk.concurrency, bulk.on_full) == (5, "drop_oldest")
    assert settings.queues["reports.daily"].concurrency == 1
    assert set(settings.queues) == {"default", "emails", "bulk_mail", "reports.daily"}


def test_the_environment_wins_over_the_file_and_keeps_its_other_keys(tmp_path):
    settings = load(tmp_path, "[queues.emails]\nweight = 3\nconcurrency = 9\nmax_size = 50\n",
                    WORKER_QUEUE_CONCURRENCY="emails=2", WORKER_QUEUE_BLOCK_TIMEOUT="emails=2.5")
    emails = settings.queues["emails"]
    assert (emails.weight, emails.concurrency, emails.max_size, emails.block_timeout) == (
        3, 2, 50, 2.5)


def test_task_keys_and_their_aliases_come_from_the_environment(tmp_path):
    settings = load(tmp_path, "[tasks.send_mail]\npriority = 1\n",
                    WORKER_TASK_CONCURRENCY="send_mail=1,rebuild_index=1",
                    WORKER_TASK_RATE_LIMIT="send_mail=5/s", WORKER_TASK_MAX_RETRIES="send_mail=7",
                    WORKER_TASK_TIMEOUT="rebuild_index=600", WORKER_TASK_QUEUE="send_mail=mail")
    mail = settings.task_override("send_mail")
    assert (mail.priority, mail.concurrency, mail.rate_limit, mail.retry_limit, mail.queue) == (
        1, 1, "5/s", 7, "mail")
    rebuild = settings.task_override("rebuild_index")
    assert (rebuild.concurrency, rebuild.timeout) == (1, 600.0)


def test_the_queue_type_variable_is_not_a_queue_key_and_empty_variables_are_unset(tmp_path):
    settings = load(tmp_path, WORKER_QUEUE_TYPE="sqlite", WORKER_QUEUE_CONCURRENCY=" ")
    assert settings.worker.queue_type == "sqlite" and set(settings.queues) == {"default"}


@pytest.mark.parametrize(("environ", "message"), [
    ({"WORKER_QUEUE_EMAILS_CONCURRENCY": "2"},
     "WORKER_QUEUE_EMAILS_CONCURRENCY: unknown [queues.NAME] key 'emails_concurrency'"),
    ({"WORKER_QUEUE_CONCURRENCY": "2"},
     "WORKER_QUEUE_CONCURRENCY: '2' is not NAME=VALUE (e.g. WORKER_QUEUE_CONCURRENCY=emails=2)"),
    ({"WORKER_QUEUE_CONCURRENCY": "emails=two"},
     "WORKER_QUEUE_CONCURRENCY: [queues.emails] concurrency: expected a whole number, got 'two'"),
    ({"WORKER_QUEUE_CONCURRENCY": "emails=1,emails=2"},
     "WORKER_QUEUE_CONCURRENCY: 'emails' is given twice"),
    ({"WORKER_QUEUE_ON_FULL": "emails=wait"},
     "WORKER_QUEUE_ON_FULL: [queues.emails] on_full must be one of reject, block, drop_oldest"),
    ({"WORKER_QUEUE_PAUSED": "emails=maybe"},
     "WORKER_QUEUE_PAUSED: [queues.emails] paused: expected true or false, got 'maybe'"),
    ({"WORKER_QUEUE_WEIGHT": "no spaces=2"},
     "WORKER_QUEUE_WEIGHT: 'no spaces' is not a valid queue name"),
    ({"WORKER_QUEUE_RATE_LIMIT": "emails=fast"},
     "WORKER_QUEUE_RATE_LIMIT: [queues.emails] rate_limit 'fast' is not a rate"),
    ({"WORKER_QUEUE_RATE_LIMIT": "emails=10/s burst 20", "WORKER_QUEUE_BURST": "emails=1"},
     "[queues.emails] rate_limit '10/s burst 20' has burst 20 but burst = 1"),
    ({"WORKER_TASK_CONCURENCY": "send_mail=1"},
     "WORKER_TASK_CONCURENCY: unknown [tasks.NAME] key 'concurency'"),
    ({"WORKER_TASK_TIMEOUT": "=5"}, "WORKER_TASK_TIMEOUT: '=5' is not NAME=VALUE"),
])
def test_a_malformed_variable_is_refused_naming_it(tmp_path, environ, message):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, **environ)
    assert message in str(error.value)
    assert error.value.exit_code == 78
