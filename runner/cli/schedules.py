"""Schedule commands: schedules [list|show|pause|resume|run-now|skip-next], cron explain."""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from runner import control as schedule_control
from runner.cli import checks
from runner.cli.format import age, counted, key_values, table
from runner.errors import InvalidArgument, InvalidSchedule
from runner.readmodel.schedules import last_outcome, late_by
from runner.scheduling import cron
from runner.scheduling.cron_text import explain
from runner.store.rows import short_id

_ACTIONS = {
    "pause": "pause a schedule (survives restarts)",
    "resume": "resume a paused schedule from its next slot",
    "run-now": "enqueue an extra run now; the schedule is not disturbed",
    "skip-next": "skip the schedule's next slot",
}


#: What an action says when the schedule was so already.
_UNCHANGED = {"pause": "was already paused", "resume": "was not paused",
              "skip-next": "already skips its next slot (one at a time)"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedules", help="periodic schedules: list, pause, resume, run now")
    p.set_defaults(func=cmd_list)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    q = actions.add_parser("list", help="every schedule with its next 3 fire times (default)")
    q.set_defaults(func=cmd_list)
    q = actions.add_parser("show", help="one schedule and its recent slots with their lag")
    q.add_argument("name")
    q.add_argument("--limit", type=int, default=20, help="how many recent slots")
    q.set_defaults(func=cmd_show)
    for name, helptext in _ACTIONS.items():
        q = actions.add_parser(name, help=helptext)
        q.add_argument("name")
        q.set_defaults(func=cmd_act, act=name, creates=True)

    p = sub.add_parser("cron", help="cron expression tools")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    q = tools.add_parser("explain", help="next fire times, as systemd-analyze calendar prints")
    q.add_argument("expression", help='e.g. "0 9 * * MON-FRI" or "*/10 * * * * *"')
    q.add_argument("--tz", help="IANA time zone (default: the --name schedule's, else "
                   "[runner] timezone)")
    q.add_argument("-n", "--iterations", type=int, default=1, help="how many fire times")
    q.add_argument("--name", help="the schedule whose name 'H' fields hash (the times that "
                   "schedule gets)")
    q.set_defaults(func=cmd_explain)


def cmd_list(args: argparse.Namespace, ctx: Any) -> int:
    rows = schedule_control.list_schedules(huey=ctx.huey, store=ctx.store)
    now = time.time()
    lines = []
    for r in rows:
        # A due fire no scheduler made yet says how late it is, as the dashboard does;
        # otherwise the lag is how late the last fire was.
        late = late_by(r, now)
        lag = (f"{age(late)} late" if late is not None else
               "-" if r.last_lag is None else age(max(r.last_lag, 0.0)))
        lines.append((
            r.name, r.expression, r.tz, _fire_times(r, label=False) or "-",
            _zoned(r.last_fired_at, r.tz, label=False), last_outcome(r) or "-", _status(r),
            lag))
    print(table(["NAME", "EXPRESSION", "TZ", "NEXT 3 FIRE TIMES", "LAST RUN", "OUTCOME",
                 "STATE", "LAG"], lines))
    print(f"({counted(len(rows), 'schedule')}, {sum(r.paused for r in rows)} paused; "
          f"times in each schedule's zone; now {_zoned(now, None)})")
    return 0


def cmd_show(args: argparse.Namespace, ctx: Any) -> int:
    limit = checks.limit("--limit", args.limit)
    r = schedule_control.get_schedule(args.name, huey=ctx.huey, store=ctx.store)
    state = _status(r)
    fields = [
        ("name", r.name), ("task", r.task), ("expression", r.expression), ("time zone", r.tz),
        ("state", state), ("misfire", r.misfire), ("overlap", r.overlap),
        ("next fire", _fire_times(r, label=True)
         or ("-" if state == "active" else f"- ({state})")),
        ("last slot", _zoned(r.last_slot_at, r.tz)),
        ("last fired", _zoned(r.last_fired_at, r.tz)),
        ("last lag", "-" if r.last_lag is None else f"{r.last_lag * 1000:.1f}ms"),
        ("last job", f"{r.last_job_id or '-'} ({r.last_outcome or '-'})"),
        ("runs", r.fired), ("skipped", r.skipped),
        ("last skip", f"{_zoned(r.last_skip_at, r.tz)} {r.last_skip_reason or ''}".strip()),
        ("skip next", "yes" if r.skip_next else "no")]
    print(key_values(fields))
    runs = schedule_control.schedule_runs(args.name, limit=limit, huey=ctx.huey,
                                          store=ctx.store)
    if runs:
        print()
        print(table(["SLOT", "FIRED", "LAG", "JOB", "OUTCOME"],
                    [(_zoned(x.slot, r.tz), _zoned(x.fired_at, r.tz),
                      f"{x.lag * 1000:.1f}ms" if not x.manual else "manual",
                      short_id(x.job_id) if x.job_id else "-", x.outcome) for x in runs]))
    return 0


def cmd_act(args: argparse.Namespace, ctx: Any) -> int:
    ctx.load_tasks()  # a schedule not yet synced by a scheduler is found in code
    if args.act == "run-now":
        run = schedule_control.run_now(args.name, store=ctx.store, settings=ctx.settings)
        if run.existing_state is None:
            print(f"run-now: {args.name} enqueued job {run.job_id}")
        else:
            print(f"run-now: {args.name}: {run.wording} {run.job_id}; nothing enqueued")
        return 0
    act = {"pause": schedule_control.pause_schedule, "resume": schedule_control.resume_schedule,
           "skip-next": schedule_control.skip_next_run}[args.act]
    changed = act(args.name, store=ctx.store)
    print(f"{args.act}: {args.name}" + ("" if changed else f" {_UNCHANGED[args.act]}"))
    return 0


def cmd_explain(args: argparse.Namespace, ctx: Any) -> int:
    if args.iterations < 1:  # explain() would print "never" for an expression that fires
        raise InvalidArgument(f"-n/--iterations {args.iterations}: expected at least 1")
    zone = _explain_zone(args, ctx)
    try:
        spec = cron.parse(args.expression, tz=zone, name=args.name)
    except InvalidSchedule as exc:  # the command's own input, not the settings: exit 65
        raise InvalidArgument(str(exc)) from None
    print(explain(spec, datetime.now(UTC), args.iterations))
    return 0


def _explain_zone(args: argparse.Namespace, ctx: Any) -> str:
    """``--tz``, else the zone of the schedule ``--name`` names (as defined in code, else as
    stored), else ``[runner] timezone``: the times that schedule, or a new one, gets."""
    if args.tz is not None:
        return args.tz
    if args.name:
        ctx.load_tasks()
        zone = schedule_control.schedule_zone(args.name, huey=ctx.huey)
        if zone is None and ctx.database_exists():
            row = ctx.store.get_schedule(args.name)
            zone = None if row is None else row.tz
        if zone is not None:
            return zone
    return ctx.settings.runner.timezone


def _fire_times(r: Any, *, label: bool) -> str:
    """The next 3 fire times, the one skip-next will skip marked; none for a schedule that
    does not fire (its stored next fire is a past slot, or one it will not keep)."""
    if r.paused or not r.enabled or r.orphaned:
        return ""
    return ", ".join(_zoned(t, r.tz, label=label) + (" (skipped)" if r.skip_next and not i
                                                     else "")
                     for i, t in enumerate(schedule_control.upcoming_fire_times(r, 3)))


def _status(r: Any) -> str:
    if r.orphaned:
        return "orphaned"
    if not r.enabled:
        return "disabled"
    return "paused" if r.paused else "active"


def _zoned(instant: datetime | float | None, tz: str | None, *, label: bool = True) -> str:
    """A time as wall time in zone ``tz`` (None: this machine's), labelled with the zone's
    abbreviation unless the table names the zone already; '-' for none.

    A schedule's slots are its own zone's wall times: a fire time beside a local time
    reads as the wrong hour, so every time of a schedule is given in its zone.
    """
    if instant is None:
        return "-"
    moment = instant if isinstance(instant, datetime) else datetime.fromtimestamp(instant, UTC)
    try:
        zone = None if tz is None else ZoneInfo(tz)
    except Exception:
        zone = UTC
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" + (" %Z" if label else ""))
