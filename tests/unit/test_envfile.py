"""The CLI finds the service's settings as the service does; reading never creates a database."""

from __future__ import annotations

import pytest

from runner.cli import main as cli
from runner.envfile import parse_env_file, service_environment
from runner.errors import ConfigError
from tests.conftest import in_checkout_beside_service, write_settings


@pytest.fixture
def no_env_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNNER_ENV_FILE", "")
    monkeypatch.delenv("RUNNER_SETTINGS", raising=False)
    monkeypatch.delenv("RUNNER_DATABASE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", [["health"], ["metrics"], ["stats"], ["jobs"], ["workers"],
                                     ["schedules"], ["schedules", "show", "nightly"],
                                     ["logs"], ["check"]])
def test_read_only_commands_never_create_a_database(command, tmp_path, no_env_file, capsys):
    settings = write_settings(tmp_path)
    database = tmp_path / "jobs.db"
    code = cli(["--settings", str(settings), *command])
    assert not database.exists()
    out = capsys.readouterr()
    if command == ["check"]:
        assert code == 0 and "not created yet" in out.out
    elif command == ["health"]:
        assert code == 1 and "does not exist" in out.out
    else:
        assert code == 73 and "no jobs database here" in out.err and "--settings" in out.err


@pytest.mark.parametrize("command", [["check"], ["health"], ["jobs"], ["queues"]])
def test_commands_that_only_read_leave_an_empty_file_empty(command, tmp_path, no_env_file,
                                                         capsys):
    # Given an empty file where the database goes (touched by a deploy script, say)
    settings = write_settings(tmp_path)
    database = tmp_path / "jobs.db"
    database.touch()
    code = cli(["--settings", str(settings), *command])
    # Then nothing is written to it, and the command says it is empty, as for no file
    assert database.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs.db", "settings.toml"]
    out = capsys.readouterr()
    if command == ["check"]:
        assert code == 0, out.err
        assert (f"database {database} (empty file: no jobs database yet; a worker or producer "
                "creates it)") in out.out
    elif command == ["health"]:
        assert code == 1 and f"{database} holds no jobs database: the file is empty" in out.out
    else:
        assert code == 73 and f"{database}: no jobs database here; the file is empty" in out.err


def test_the_cli_reads_the_settings_the_service_environment_file_names(
        tmp_path, monkeypatch, capsys):
    # Given the service's settings under /etc-like paths, named by its environment file,
    service_dir = tmp_path / "etc"
    service_dir.mkdir()
    service_settings = write_settings(service_dir)
    env_file = service_dir / "jobrunner.env"
    env_file.write_text(f'# read by systemd and the CLI\nRUNNER_SETTINGS="{service_settings}"\n'
                        f"RUNNER_DATABASE={service_dir / 'service.db'}\n")
    # and a checkout with a settings file of its own as the working directory
    checkout = in_checkout_beside_service(tmp_path, monkeypatch, env_file)
    # When `check` runs there without --settings
    assert cli(["check"]) == 0
    out = capsys.readouterr().out
    # Then it used the service's file, and says how it found it
    assert f"settings {service_settings} (found via RUNNER_SETTINGS in {env_file})" in out
    assert str(service_dir / "service.db") in out
    # And the process's own environment still wins over the file
    monkeypatch.setenv("RUNNER_SETTINGS", str(checkout / "settings.toml"))
    assert cli(["check"]) == 0
    assert "found via $RUNNER_SETTINGS" in capsys.readouterr().out


def test_environment_file_syntax_and_errors(tmp_path):
    values = parse_env_file('A=1\n# comment\n; also\n\nexport B = "two words"\nC=\'x\'\n', "f")
    assert values == {"A": "1", "B": "two words", "C": "x"}
    with pytest.raises(ConfigError, match="f:2: expected KEY=VALUE"):
        parse_env_file("A=1\nnot a pair\n", "f")
    missing = tmp_path / "none.env"
    with pytest.raises(ConfigError, match="environment file not found"):
        service_environment({"RUNNER_ENV_FILE": str(missing)})
    assert service_environment({"RUNNER_ENV_FILE": ""}).env_file is None


def test_an_environment_file_saved_with_a_byte_order_mark_reads_as_systemd_reads_it(tmp_path):
    env_file = tmp_path / "jobrunner.env"
    env_file.write_bytes(b"\xef\xbb\xbfRUNNER_DATABASE=/srv/jobs.db\n")
    assert service_environment({"RUNNER_ENV_FILE": str(env_file)}).file_values == {
        "RUNNER_DATABASE": "/srv/jobs.db"}
    env_file.write_bytes(b"RUNNER_DATABASE=/srv/\xffjobs.db\n")
    with pytest.raises(ConfigError) as error:
        service_environment({"RUNNER_ENV_FILE": str(env_file)})
    assert str(error.value) == (f"{env_file}: not valid UTF-8: byte 0xff at line 1, column 22; "
                                "save the file as UTF-8")
