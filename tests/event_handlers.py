"""Event handlers used by the event tests, importable by worker subprocesses too."""

from __future__ import annotations

from runner import event_handler
from runner.runner_huey import current_job
from tests.jobs import record

#: Flipped by the replay test to "fix" the broken handler in-process.
FIXED = {"flaky": False}


def _run_id() -> str:
    job = current_job()
    return f"{job.id} {job.attempt}" if job else "- 0"


@event_handler("shop.order.placed", retry_limit=0)
def order_exact(data):
    record(f"exact {data['n']} {_run_id()}")


@event_handler("shop.order.*", retry_limit=0)
async def order_wild(data):
    record(f"wild {data['n']} {_run_id()}")


@event_handler("shop.**", retry_limit=2, retry_delay=0.01, jitter=0)
def order_broken(data):
    record(f"broken {data['n']} {_run_id()}")
    raise RuntimeError("this handler always fails")


@event_handler("fix.me", retry_limit=1, retry_delay=0.01, jitter=0)
def flaky(data):
    record(f"flaky {data['n']} {'fixed' if FIXED['flaky'] else 'broken'}")
    if not FIXED["flaky"]:
        raise RuntimeError("not fixed yet")


@event_handler("fix.me", retry_limit=0)
def steady(data):
    record(f"steady {data['n']}")


@event_handler("early.bird", retry_limit=0)
def early(data):
    record(f"early {data['n']} {_run_id()}")


@event_handler("load.tick", retry_limit=3, retry_delay=0.01, jitter=0)
def tick(data):
    record(f"{data['p']}-{data['i']} {_run_id()}")


@event_handler("who.*", retry_limit=0)
def whoami(data):
    from runner.events import current_event

    event = current_event()
    record(f"who {data['n']} " + (f"{event.id} {event.name} {event.key}" if event else "none"))
