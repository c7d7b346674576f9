"""Files the runner creates are private: 0600 (or ``[runner] file_mode``) whoever creates them."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from runner.errors import ConfigError
from runner.settings_loader import parse_settings
from runner.store.sqlite.db import Database
from tests.conftest import ROOT, wait_for, write_settings

PRODUCER = """
import sys
from runner import configure
from runner.settings_loader import load_settings
configure(load_settings(sys.argv[1]))
from tests import jobs
print(jobs.add(1, 2).id)
"""


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def open_umask():
    """The most permissive umask a careless shell may have."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def database_files(directory):
    return {name: mode(directory / name) for name in ("jobs.db", "jobs.db-wal", "jobs.db-shm")
            if (directory / name).exists()}


def test_a_producer_script_creates_the_database_and_its_wal_private(tmp_path, open_umask):
    settings = write_settings(tmp_path)
    done = subprocess.run([sys.executable, "-c", PRODUCER, str(settings)], cwd=tmp_path,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    # The producer has exited; open the file again to see the WAL files as a worker would.
    db = Database(tmp_path / "jobs.db")
    db.query("SELECT count(*) FROM runner_job")
    files = database_files(tmp_path)
    assert set(files) >= {"jobs.db", "jobs.db-wal", "jobs.db-shm"}
    assert files == dict.fromkeys(files, 0o600)
    db.close()


def test_the_cli_creates_a_private_database(tmp_path, open_umask):
    settings = write_settings(tmp_path)
    # (enqueue: commands that only read never create a database)
    done = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                           "enqueue", "add", "--args", "[1, 2]"],
                          cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "jobs.db") == 0o600


def test_a_worker_creates_its_database_and_log_private(tmp_path, make_worker, open_umask):
    worker = make_worker()
    wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    files = database_files(tmp_path)
    assert set(files) == {"jobs.db", "jobs.db-wal", "jobs.db-shm"}
    assert files == dict.fromkeys(files, 0o600)
    assert mode(tmp_path / "worker.log") == 0o600
    assert worker.terminate() == 0


def test_a_configured_file_mode_is_honoured_even_against_the_umask(tmp_path, make_worker):
    settings = write_settings(tmp_path, extra='[logging]\nfile = "logs/w.log"\n')
    text = settings.read_text().replace('[runner]\n', '[runner]\nfile_mode = "0640"\n', 1)
    settings.write_text(text)
    old = os.umask(0o077)
    try:
        worker = make_worker(settings=settings)
        wait_for(lambda: "ready:" in worker.output(), message="worker ready")
    finally:
        os.umask(old)
    assert mode(tmp_path / "jobs.db") == 0o640
    assert mode(tmp_path / "logs" / "w.log") == 0o640
    assert worker.terminate() == 0


def test_rotated_log_files_stay_private(tmp_path, open_umask):
    from runner.worker.log_config import PrivateRotatingFileHandler

    handler = PrivateRotatingFileHandler(str(tmp_path / "w.log"), maxBytes=50, backupCount=2,
                                         delay=True, file_mode=0o600)
    for n in range(5):
        handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "line %d " * 4,
                                       (n,) * 4, None))
    handler.close()
    assert (tmp_path / "w.log.1").exists()
    assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
        "w.log": 0o600, "w.log.1": 0o600, "w.log.2": 0o600}


def test_an_existing_file_keeps_the_permissions_its_owner_chose(tmp_path):
    from runner.files import create_private

    path = tmp_path / "shared.db"
    path.touch()
    path.chmod(0o640)
    assert not create_private(path)
    assert mode(path) == 0o640


@pytest.mark.parametrize("value", ["644x", "0400", "1777", "", "rw-------"])
def test_file_mode_must_be_octal_and_let_the_owner_read_and_write(value):
    with pytest.raises(ConfigError, match=r"\[runner\] file_mode"):
        parse_settings({"runner": {"file_mode": value}})


def test_file_mode_accepts_octal_spellings():
    assert parse_settings({"runner": {"file_mode": "0o640"}}).runner.file_mode_bits == 0o640
    assert parse_settings({"runner": {"file_mode": "600"}}).runner.file_mode_bits == 0o600


@pytest.fixture
def shared_directory():
    """A directory every user may write in (pytest's own are private to their owner)."""
    path = Path(tempfile.mkdtemp(prefix="runner-shared-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path)


def as_other_user(command: list[str]) -> list[str]:
    """``command`` run by a user who does not own the test's files: root is refused no
    write, so it runs as nobody (setpriv finds this interpreter under a home only root
    may enter, as subprocess's ``user=`` does not); another user runs as itself."""
    if os.geteuid() != 0:
        return command
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv to become another user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def test_a_database_file_this_user_may_not_write_is_refused_with_exit_73(shared_directory):
    # Given a jobs database whose file another user owns (mode 0644), in a directory
    # this user may write in
    settings = write_settings(shared_directory)
    settings.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "runner", "--settings", str(settings),
                           "enqueue", "add", "--args", "[1, 2]"], cwd=shared_directory,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    database = shared_directory / "jobs.db"
    database.chmod(0o644 if os.geteuid() == 0 else 0o444)
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    runner = [sys.executable, "-m", "runner", "--settings", str(settings)]
    # When the worker and the commands that write run as this user
    for command in ([sys.executable, str(ROOT / "run.py"), "--settings", str(settings)],
                    [*runner, "enqueue", "add", "--args", "[1, 2]"],
                    [*runner, "emit", "user.signup", "--data", "{}"],
                    [*runner, "queues", "pause", "default"]):
        done = subprocess.run(as_other_user(command), cwd=shared_directory, env=clean_env(),
                              capture_output=True, text=True, timeout=60)
        output = done.stdout + done.stderr
        # Then each exits 73 naming the file, whose permissions are the problem
        assert done.returncode == 73, (command, output)
        assert f"{database} is read-only for this user (uid {uid})" in output, (command, output)
        assert "Traceback" not in output and "server" not in output, (command, output)
    # and reading it still works; the job just enqueued, which this user cannot move out of
    # the intake, is told of until a user who may write does
    done = subprocess.run(as_other_user([*runner, "jobs"]), cwd=shared_directory,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "(0 of 0 jobs)" in done.stdout, done.stdout + done.stderr
    assert "are not listed yet" in done.stdout
    subprocess.run([*runner, "jobs"], cwd=shared_directory, env=clean_env(),
                   capture_output=True, text=True, timeout=60, check=True)
    done = subprocess.run(as_other_user([*runner, "jobs"]), cwd=shared_directory,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "(1 of 1 job)" in done.stdout, done.stdout + done.stderr
    assert "not listed" not in done.stdout
