"""``R`` and ``D`` on Jobs: count exactly, ask for the count typed, act on that set."""

from __future__ import annotations

from runner import control
from runner.errors import RunnerError
from runner.store.backend import Store
from runner.store.rows import JobFilter
from tui import format as fmt
from tui.filters import describe, describe_error
from tui.screens.base import DataScreen


def ask_bulk(screen: DataScreen, verb: str, filters: JobFilter) -> None:
    """Count what ``verb`` would change (in a thread), then ask for that count typed."""
    if screen.dashboard.read_only:
        return

    def plan() -> None:
        try:
            with screen.dashboard.source.reading() as store:
                found = control.plan_bulk(store, verb, filters)
        except RunnerError as exc:
            screen.app.call_from_thread(screen.notify, f"cannot {verb}: {exc}",
                                        severity="error")
            return
        screen.app.call_from_thread(_confirm, screen, found)

    screen.run_worker(plan, thread=True, group="plan", exit_on_error=False)


def _confirm(screen: DataScreen, plan: control.BulkPlan) -> None:
    if not plan.count:
        screen.notify(f"nothing to {plan.verb}: no {'/'.join(plan.states)} job matches")
        return
    what = " ".join(part for part in (describe_error(plan.filters), describe(plan.filters))
                    if part) or "no filter"
    states = "/".join(plan.states)
    note = (" Completed jobs are not retried unless the state filter names them."
            if plan.verb == "retry" and plan.filters.state is None else "")
    warning = ("\n[b red]No filter: this is every such job in the database.[/]"
               if plan.unfiltered else "")
    count = f"{plan.count:,}"
    screen.confirm(
        f"{plan.verb.capitalize()} [b]{count}[/] {states} jobs (state "
        f"[b]{plan.filters.state or 'all'}[/], {fmt.safe(what)}).{note}{warning}",
        lambda: screen.act(f"{plan.verb} all", run_bulk, plan,
                           refused=f"{plan.verb} all stopped"),
        typed=count)


def run_bulk(store: Store, plan: control.BulkPlan) -> str:
    """Act on the planned set (in the write thread); says how many of the count changed."""
    done = control.run_bulk(store, plan, by=control.actor("dashboard"))
    changed = plan.count - done
    tail = f" ({changed:,} had changed state meanwhile and were left alone)" if changed else ""
    return f"{done:,} of {plan.count:,} jobs{tail}"
