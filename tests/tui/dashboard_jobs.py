"""Tasks only the dashboard tests enqueue (a second queue to filter by)."""

from __future__ import annotations

from runner import Fatal, task


@task(queue="mail", retry_limit=0)
def send_mail(to):
    return to


@task(retry_limit=2, retry_delay=0.01, jitter=0)
def fails_while_handling(label):
    try:
        raise KeyError(label)
    except KeyError as exc:
        raise ConnectionError(f"cannot reach {label}") from exc


@task(retry_limit=0)
def rejects_input(n):
    raise Fatal(f"bad input {n}")


@task(retry_limit=0)
def fails_on_input(n):
    raise ValueError(f"bad input {n}")
