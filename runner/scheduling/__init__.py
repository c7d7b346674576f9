"""Periodic tasks: cron math and text, ``@scheduled_task``, the scheduler thread, control."""
