"""Tasks only the dashboard tests enqueue (a second queue to filter by)."""

from __future__ import annotations

from runner import task


@task(queue="mail", retry_limit=0)
def send_mail(to):
    return to
