"""The example tasks: session cleanup, conversation archive, workspace set-up on signup.

``daily_cleanup`` and ``custom_task`` run on cron schedules. Run ``python run.py``
and enqueue the others, or emit an event, from any script::

    from tasks.examples import initialize_user_workspace
    initialize_user_workspace(42)

    from runner import emit
    emit("user.signup", {"user_id": 42})   # handle_signup and audit_user_events both run
"""

from __future__ import annotations

import json
import logging

from runner import event_handler, scheduled_task, task
from runner.events.delivery import current_event
from tasks import demo_app

logger = logging.getLogger(__name__)


@task(retry_limit=3, timeout=60)
async def cleanup_expired_sessions() -> int:
    """Delete expired sessions."""
    removed = demo_app.expire_sessions()
    logger.info("removed %d expired sessions", removed)
    return removed


@task(retry_limit=3, timeout=300)
async def archive_old_conversations(days: float = 30) -> int:
    """Archive conversations untouched for ``days`` days."""
    archived = demo_app.archive_conversations(days)
    logger.info("archived %d conversations older than %g days", archived, days)
    return archived


@task(retry_limit=3, timeout=30, queue="high_priority", priority=10)
async def initialize_user_workspace(user_id: int) -> bool:
    """Create the workspace of a new user (idempotent)."""
    created = demo_app.create_workspace(user_id)
    logger.info("workspace for user %s %s", user_id, "created" if created else "already there")
    return created


@scheduled_task(name="daily_cleanup", cron="0 0 * * *", retry_limit=3, timeout=300)
async def daily_cleanup() -> int:
    """Every midnight (``[runner] timezone``): expire sessions, archive old conversations."""
    removed = demo_app.expire_sessions()
    archived = demo_app.archive_conversations(30)
    logger.info("daily cleanup: %d sessions expired, %d conversations archived", removed,
                archived)
    return removed + archived


@scheduled_task(name="custom_task", cron="*/15 * * * *", retry_limit=3)
async def custom_task() -> None:
    """Every 15 minutes: the seed's placeholder periodic task."""
    logger.info("custom_task ran")


@event_handler("user.signup", queue="high_priority", max_retries=3, timeout=30)
async def handle_signup(event_data: dict) -> bool:
    """Set up the new user's workspace (the same logic as ``initialize_user_workspace``)."""
    return await initialize_user_workspace.func(event_data["user_id"])


@event_handler("user.*", max_retries=5, timeout=10)
def audit_user_events(event_data: dict) -> None:
    """Write every ``user.*`` event to the audit log: a second handler of ``user.signup``."""
    event = current_event()
    demo_app.write_audit(event.name if event else "user.?",
                         json.dumps(event_data, sort_keys=True))
