"""Local scripts find the service's settings as the worker and the CLI do."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT, write_settings


def test_a_script_enqueues_into_the_database_the_service_environment_file_names(tmp_path):
    # Given the service's settings named by its environment file, as the systemd unit has,
    service_dir = tmp_path / "etc"
    service_dir.mkdir()
    service_settings = write_settings(service_dir)
    env_file = service_dir / "jobrunner.env"
    env_file.write_text(f"RUNNER_SETTINGS={service_settings}\n")
    # and a checkout with a settings file of its own as the working directory
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    write_settings(checkout)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKER_", "RUNNER_"))}
    env.update(PYTHONPATH=str(ROOT), RUNNER_ENV_FILE=str(env_file))
    # When a local script there enqueues a job
    subprocess.run([sys.executable, "-c", "from tests.jobs import add; add(1, 2)"],
                   cwd=checkout, env=env, check=True, capture_output=True, timeout=60)
    # Then the job is in the service's database, which the worker and the CLI read,
    # not in a second file beside the script that no worker drains
    assert (service_dir / "jobs.db").exists()
    assert not (checkout / "jobs.db").exists()
    listed = subprocess.run([sys.executable, "-m", "runner", "jobs"], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "(1 of 1 job)" in listed.stdout, listed
