"""Failures: retrying and dead jobs grouped by error type and message."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.readmodel.failures import (
    FailureGroup,
    failure_group_ids,
    failure_groups,
    failure_signature,
)
from runner.store.db import Database
from runner.store.queries import JobFilter
from tui import format as fmt
from tui.screens.base import DataScreen, TabCounts
from tui.widgets.keyed_table import KeyedTable, OpenableTable

COLUMNS = [("count", "jobs"), ("dead", "dead"), ("retrying", "retrying"),
           ("type", "error"), ("message", "message"), ("tasks", "tasks"), ("last", "last failed")]
#: Below 120 cells: how many, which error, what it said.
NARROW = [("count", 6), ("type", 16), ("message", None)]


def group_key(group: FailureGroup) -> str:
    """A stable row key for a group."""
    raw = f"{group.error_type}\x00{group.message}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


class FailuresScreen(DataScreen):
    """Which errors are hurting, and how much; act on a whole group."""

    TITLE = "Failures"
    MODE = "failures"
    BINDINGS = [
        Binding("enter", "open", "Jobs of group", show=False),
        Binding("r", "retry", "Retry group"),
        Binding("d", "discard", "Discard group"),
    ]
    HELP = [("j / k, g / G", "move, first / last group"),
            ("enter", "the group's jobs on the Jobs screen (act on one there)"),
            ("r", "retry every job of the group; type the count"),
            ("d", "discard every job of the group; type the count")]

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, FailureGroup] = {}
        self._read: tuple[tuple[int, int], list[FailureGroup]] | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static("retrying and dead jobs by error, biggest group first", classes="section")
        yield OpenableTable(COLUMNS, narrow=NARROW, id="failures")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        return fmt.count(counts.summary.dead + counts.summary.retrying)

    def poll_request(self) -> Any:
        return True

    def fetch(self, db: Database, request: Any, now: float) -> Any:
        # Grouping every failed job is the costly read; do it again only on a change.
        signature = failure_signature(db)
        if self._read is None or self._read[0] != signature:
            self._read = (signature, failure_groups(db))
        return self._read[1], now

    def apply(self, data: Any) -> None:
        if data is None:
            return
        groups, now = data
        self.groups = {group_key(g): g for g in groups}
        self.query_one(KeyedTable).sync([
            (key, (fmt.count(g.count), fmt.count(g.dead), fmt.count(g.retrying),
                   fmt.safe(g.error_type or "-"), fmt.safe(fmt.one_line(g.message, 70)),
                   fmt.safe(g.tasks),
                   fmt.stamp(g.last_failed_at, now)))
            for key, g in self.groups.items()])

    def _selected(self) -> FailureGroup | None:
        key = self.query_one(KeyedTable).selected_key
        return self.groups.get(key) if key else None

    def action_open(self) -> None:
        group = self._selected()
        if group is not None:
            self.app.run_worker(self._open(group), exclusive=True, group="navigate")

    async def _open(self, group: FailureGroup) -> None:
        await self.dashboard.switch_mode("jobs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_filter"):
            screen.set_filter(JobFilter(state="failed", text=group.message or None))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_retry(self) -> None:
        self._group_action("Retry", actions.retry_jobs)

    def action_discard(self) -> None:
        self._group_action("Discard", actions.discard_jobs)

    def _group_action(self, verb: str, fn: Any) -> None:
        group = self._selected()
        if group is None:
            return

        def run(db: Database) -> str:
            done = fn(db, failure_group_ids(db, group.error_type, group.message))
            return f"{done:,} of {group.count:,} jobs"

        count = f"{group.count:,}"
        self.confirm(f"{verb} all [b]{count}[/] jobs failing with "
                     f"{fmt.safe(group.error_type)}: {fmt.safe(fmt.one_line(group.message, 60))}?",
                     lambda: self.act(f"{verb.lower()} group", run,
                                      refused=f"{verb.lower()} group stopped"),
                     typed=count)
