"""The dashboard on a PostgreSQL database: the same overview as on a file."""

from __future__ import annotations

import psycopg

from runner.store.factory import open_store
from tests.conformance.helpers import job
from tests.postgres_support import fresh_schema
from tests.tui.conftest import drive
from tui.__main__ import main
from tui.app import make_app


def test_the_dashboard_shows_the_jobs_of_a_postgres_database():
    with fresh_schema() as url:
        store = open_store(url)
        waiting = [job(1.0, task="tests.jobs.noop") for _ in range(3)]
        store.enqueue(waiting, now=1.0)
        store.close()
        app = make_app(db=url, refresh=60.0)
        shown: list[str] = []

        async def scenario(app, pilot) -> None:  # noqa: ANN001 - the app and its pilot
            shown.append(" ".join(str(w.render()) for w in app.screen.query("*")
                                  if hasattr(w, "render")))

        drive(app, scenario)
        assert "waiting: 3" in shown[0] and "Jobs (3 live)" in shown[0], shown[0][:500]


def _with_password(url: str) -> str:
    """``url`` with a password in it (the server's own when it has one)."""
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if ":" in credentials:
        return url
    return f"{scheme}://{credentials or 'postgres'}:pg-url-password@{host}"


def test_the_dashboard_never_shows_the_password_of_its_database_url():
    with fresh_schema() as url:
        secret_url = _with_password(url)
        secret = secret_url.split("://", 1)[1].rpartition("@")[0].split(":", 1)[1]
        open_store(secret_url).close()
        app = make_app(db=secret_url, refresh=60.0)
        shown: list[str] = []

        async def scenario(app, pilot) -> None:  # noqa: ANN001 - the app and its pilot
            shown.append(app.export_screenshot())

        drive(app, scenario)
        assert secret not in shown[0]
        assert ":***@" in shown[0]


def test_a_database_no_worker_has_prepared_is_refused_saying_to_start_one(capsys):
    with fresh_schema() as url:  # a new database: no worker has created its tables yet
        assert main(["--db", url]) == 65
        err = capsys.readouterr().err
        assert "holds no jobs tables" in err and "start a worker" in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_a_poll_blocked_by_a_held_lock_says_the_data_shown_is_stale():
    from tests.tui.test_poll_errors import refresh

    with fresh_schema() as url:
        store = open_store(url)
        store.enqueue([job(1.0, task="tests.jobs.noop") for _ in range(3)], now=1.0)
        store.close()
        app = make_app(db=url, refresh=60.0)
        statuses: list[str] = []

        async def scenario(app, pilot) -> None:  # noqa: ANN001 - the app and its pilot
            holder = psycopg.connect(url)
            holder.execute("LOCK TABLE runner_job IN ACCESS EXCLUSIVE MODE")
            try:
                statuses.append(await refresh(app, pilot))
                statuses.append(str(app.screen.has_class("-stale")))
            finally:
                holder.close()
            statuses.append(await refresh(app, pilot))

        drive(app, scenario)
        blocked, stale, after = statuses
        assert blocked.startswith("database unavailable since "), blocked
        assert "waited 2s for a lock" in blocked and "showing data from" in blocked, blocked
        assert stale == "True"
        assert after.startswith("updated "), after
