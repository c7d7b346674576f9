"""Failures: retrying and dead jobs grouped by error type and message."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from runner import control as actions
from runner.readmodel import failures
from runner.readmodel.failures import (
    ExactMessage,
    FailureGroup,
    capped,
    failure_groups,
    failure_signature,
)
from runner.store.backend import Store
from runner.store.rows import JobFilter
from runner.store.states import JobState
from tui import format as fmt
from tui.screens.base import DataScreen, TabCounts
from tui.source import READ_ERRORS
from tui.widgets.keyed_table import KeyedTable, OpenableTable

COLUMNS = [("count", "jobs"), (JobState.DEAD.value, JobState.DEAD.value),
           (JobState.RETRYING.value, JobState.RETRYING.value),
           ("type", "error"), ("message", "message"), ("tasks", "tasks"), ("last", "last failed")]
#: Below 120 cells: how many, which error, what it said.
NARROW = [("count", 7), ("type", 16), ("message", None)]
ALL = "retrying and dead jobs by error, biggest group first"
#: Past the cap, only the newest failed jobs are grouped (see runner.readmodel.failures).
NEWEST = ("the newest {cap} retrying and dead jobs by error (of more than {cap}: the counts "
          "are of these), biggest group first")


def group_key(group: FailureGroup) -> str:
    """A stable row key for a group."""
    raw = f"{group.error_type}\x00{group.message}".encode()
    return hashlib.blake2b(raw, digest_size=8).hexdigest()


def message_key(group: FailureGroup, exact: ExactMessage) -> str:
    """A stable row key for one exact message of an expanded group."""
    raw = f"{group.error_type}\x00{exact.message}".encode()
    return "m" + hashlib.blake2b(raw, digest_size=8).hexdigest()


def rest_key(group: FailureGroup) -> str:
    """The row key of the messages of an expanded group past those listed."""
    return "+" + group_key(group)


class FailuresScreen(DataScreen):
    """Which errors are hurting, and how much; act on a whole group."""

    TITLE = "Failures"
    MODE = "failures"
    BINDINGS = [
        Binding("enter", "open", "Jobs / expand"),
        Binding("space", "expand", "Expand"),
        Binding("r", "retry", "Retry group"),
        Binding("d", "discard", "Discard group"),
    ]
    #: An expanded group lists its most frequent messages up to this many, then one row
    #: counts the rest: a group of thousands of messages (``bad input 1`` ... ``3000``)
    #: costs a refresh what a few rows do.
    MESSAGES_SHOWN = 100
    HELP = [("j / k, g / G", "move, first / last group"),
            ("enter", "the jobs of a message on the Jobs screen; on a group of several "
                      "messages (numbers masked as #), expand it"),
            ("space", "expand a group to its exact messages (the 100 most frequent, then a "
                      "row counts the rest), or fold it"),
            ("r", "retry every job of the group; type the count"),
            ("d", "discard every job of the group; type the count")]

    def __init__(self) -> None:
        super().__init__()
        self.groups: dict[str, FailureGroup] = {}
        self.exact: dict[str, tuple[FailureGroup, ExactMessage]] = {}
        self.rest: dict[str, FailureGroup] = {}
        """Rows standing for an expanded group's messages past those listed."""
        self.expanded: set[str] = set()
        self._last: tuple[list[FailureGroup], float] | None = None
        self._read: tuple[tuple[int, int], list[FailureGroup]] | None = None

    def compose_body(self) -> Iterable[Widget]:
        yield Static(ALL, classes="section", id="failures-scope")
        yield OpenableTable(COLUMNS, narrow=NARROW, noun="group", id="failures")

    @staticmethod
    def tab_count(counts: TabCounts) -> str:
        more = "+" if counts.summary.dead_capped else ""
        return fmt.count(counts.summary.dead + counts.summary.retrying) + more

    def poll_request(self) -> Any:
        return True

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        cap = failures.FAILURE_CAP
        signature = failure_signature(store, cap=cap)
        over = capped(signature, cap)
        # Grouping is the costly read; do it again only on a change. Past the cap the
        # count no longer moves when one of the grouped jobs is retried, runs again or
        # is discarded, so then it is read at every refresh: its cost is bounded by the cap.
        if over or self._read is None or self._read[0] != signature:
            self._read = (signature, failure_groups(store, cap=cap))
        return self._read[1], cap if over else None, now

    def apply(self, data: Any) -> None:
        if data is None:
            return
        self._last = data
        groups, cap, now = data
        # Counts of the newest jobs only are lower bounds of the groups': said so, and "+".
        more = "" if cap is None else "+"
        self.query_one("#failures-scope", Static).update(
            ALL if cap is None else NEWEST.format(cap=fmt.count(cap)))
        self.groups = {group_key(g): g for g in groups}
        self.exact = {}
        self.rest = {}
        rows = []
        for key, g in self.groups.items():
            several = len(g.messages) > 1
            mark = ("▼ " if key in self.expanded else "▶ ") if several else ""
            note = f"  [dim]({len(g.messages)} messages)[/]" if several else ""
            rows.append((key, (fmt.count(g.count) + more, fmt.count(g.dead), fmt.count(g.retrying),
                               mark + fmt.safe(g.error_type or "-"),
                               fmt.safe(fmt.one_line(g.message, 70)) + note,
                               fmt.safe(fmt.one_line(g.tasks, 32)),
                               fmt.relative(g.last_failed_at, now))))
            if several and key in self.expanded:
                for m in g.messages[:self.MESSAGES_SHOWN]:
                    child = message_key(g, m)
                    self.exact[child] = (g, m)
                    rows.append((child, (fmt.count(m.count) + more, fmt.count(m.dead),
                                         fmt.count(m.retrying), "  └",
                                         fmt.safe(fmt.one_line(m.message, 70)), "",
                                         fmt.relative(m.last_failed_at, now))))
                if rest := g.messages[self.MESSAGES_SHOWN:]:
                    self.rest[rest_key(g)] = g
                    jobs = sum(m.count for m in rest)
                    rows.append((rest_key(g), (
                        fmt.count(jobs) + more, fmt.count(sum(m.dead for m in rest)),
                        fmt.count(sum(m.retrying for m in rest)), "  └",
                        f"[dim]+{fmt.count(len(rest))} more messages[/]", "", "")))
        self.query_one(KeyedTable).sync(rows)

    def _on_rest(self, key: str | None) -> bool:
        """Says what the row of an expanded group's unlisted messages offers, if on it."""
        if key not in self.rest:
            return False
        self.notify("the messages not listed: r/d on the group's row act on every message "
                    "of the group, enter on a listed message shows its jobs")
        return True

    def action_expand(self) -> None:
        key = self.query_one(KeyedTable).target_key()
        if key in self.exact:
            key = group_key(self.exact[key][0])
        elif key in self.rest:
            key = group_key(self.rest[key])
        group = self.groups.get(key) if key else None
        if group is None or len(group.messages) < 2:
            return
        self.expanded.symmetric_difference_update({key})
        if self._last is not None:
            self.apply(self._last)
        table = self.query_one(KeyedTable)
        table.move_cursor(row=table.get_row_index(key))

    def action_open(self) -> None:
        key = self.query_one(KeyedTable).target_key()
        if self._on_rest(key):
            return
        if key in self.exact:
            group, exact = self.exact[key]
            message = exact.message
        else:
            group = self.groups.get(key) if key else None
            if group is None:
                return
            if len(group.messages) > 1:
                self.action_expand()
                return
            message = group.message
        self.app.run_worker(self._open(group.error_type, message), exclusive=True,
                            group="navigate")

    async def _open(self, error_type: str | None, message: str | None) -> None:
        await self.dashboard.switch_mode("jobs")
        screen = self.dashboard.data_screen()
        if screen is not None and hasattr(screen, "set_filter"):
            # Exactly this error: a text search would also list longer messages
            # ("bad input 12" for "bad input 1") and other error types, and R/D act on them.
            screen.set_filter(JobFilter(state="failed", error=(error_type, message)))

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_retry(self) -> None:
        self._group_action("retry")

    def action_discard(self) -> None:
        self._group_action("discard")

    def _group_action(self, verb: str) -> None:
        key = self.query_one(KeyedTable).target_key()
        if self._on_rest(key):
            return
        if key in self.exact:  # an exact message of an expanded group: just its jobs
            group, exact = self.exact[key]
            error_type, message, whole = group.error_type, exact.message, False
        elif (group := self.groups.get(key) if key else None) is not None:
            error_type, message, whole = group.error_type, group.message, True
        else:
            return

        def plan() -> None:
            # Every failed job of the group is counted once, before asking, not only those
            # among the newest the screen groups: the count typed is the set acted on, and
            # a job failing the same way after the question is left alone.
            try:
                with self.dashboard.source.reading() as store:
                    messages = (failures.group_messages(store, error_type, message)
                                if whole else [message])
                    found = actions.plan_failure_group(store, verb, error_type, messages)
            except READ_ERRORS as exc:
                self.app.call_from_thread(self.notify, f"cannot {verb}: {exc}",
                                          severity="error")
                return
            shown = message if len(found.messages) < 2 else failures.mask_numbers(message)
            self.app.call_from_thread(self._ask_group, found, shown)

        self.run_worker(plan, thread=True, group="plan", exit_on_error=False)

    def _ask_group(self, plan: actions.FailureGroupPlan, text: str | None) -> None:
        if not plan.count:
            self.notify(f"nothing to {plan.verb}: no job of this group is failed now")
            return
        count = plan.count

        def run(store: Store) -> str:
            done = actions.run_failure_group(store, plan)
            return f"{done:,} of {count:,} jobs"

        typed = f"{count:,}"
        verb = plan.verb.capitalize()
        self.confirm(f"{verb} all [b]{typed}[/] jobs failing with "
                     f"{fmt.safe(plan.error_type)}: {fmt.safe(fmt.one_line(text, 60))}?",
                     lambda: self.act(f"{plan.verb} group", run,
                                      refused=f"{plan.verb} group stopped"),
                     typed=typed)
