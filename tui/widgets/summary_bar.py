"""The summary strip on every screen, with the refresh status beside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.text import Text
from textual.events import Resize
from textual.widgets import Static

from runner.readmodel.dashboard import Summary
from runner.readmodel.health import HealthReport
from tui import format as fmt

SEPARATOR = " │ "

#: Labels from the widest form to the most compact one; the first that fits is shown.
_FORMS = (
    {"waiting": "waiting", "running": "running", "stalled": "stalled (worker gone)",
     "n_scheduled": "scheduled", "n_retrying": "retrying", "dead": "dead", "done": "done/min",
     "errors": "errors", "oldest": "oldest waiting", "sep": SEPARATOR},
    {"waiting": "wait", "running": "run", "stalled": "stalled", "n_scheduled": "sched",
     "n_retrying": "retry", "dead": "dead", "done": "done/m", "errors": "err",
     "oldest": "oldest", "sep": SEPARATOR},
    {"waiting": "wait", "running": "run", "stalled": "stall", "n_scheduled": "sched",
     "n_retrying": "retry", "dead": "dead", "done": "done/m", "errors": "err", "oldest": "old",
     "sep": "│"},
)


#: What the tightest form leaves out, in turn, while it is still too wide: the counts a
#: glance can spare (jobs due later, between retries, the completion rate).
_SPARED = ("n_scheduled", "n_retrying", "done")


def summary_text(s: Summary, width: int = 1000) -> str:
    """The strip as markup, in the widest form that fits ``width`` cells (pure).

    Past the forms of :data:`_FORMS`, counts are abbreviated (``12k``), then the parts
    of :data:`_SPARED` are left out, so that stalled jobs, dead ones, the error rate
    and the oldest wait stay readable at 80 cells.
    """
    late = s.oldest_waiting_age or 0
    latency = f"[red]{fmt.age(s.oldest_waiting_age)}[/]" if late > 60 else fmt.age(
        s.oldest_waiting_age)

    def values(count: Callable[[int | float], str]) -> dict[str, str]:
        return {
            "waiting": count(s.waiting), "running": count(s.running),
            "stalled": f"[red]{count(s.stalled)}[/]",
            "n_scheduled": count(s.scheduled), "n_retrying": count(s.retrying),
            "dead": f"[red]{count(s.dead)}{'+' if s.dead_capped else ''}[/]" if s.dead else "0",
            "done": count(s.completed_per_minute), "errors": fmt.rate(s.error_rate),
            "oldest": latency}

    keys = [k for k in values(fmt.count) if k != "stalled" or s.stalled]
    tries = [(form, values(fmt.count), keys, ": ") for form in _FORMS]
    tight, short = _FORMS[-1], values(fmt.short_count)
    tries += [(tight, short, [k for k in keys if k not in _SPARED[:n]], ":")
              for n in range(len(_SPARED) + 1)]
    text = ""
    for form, shown, parts, colon in tries:
        text = form["sep"].join(f"{form[k]}{colon}[b]{shown[k]}[/]" for k in parts)
        if Text.from_markup(text).cell_len <= width:
            break
    return text


class Line(Static):
    """A one-row Static that repaints only when its text changes (no layout pass)."""

    _shown: str | None = None

    def show_text(self, text: str) -> None:
        if text != self._shown:
            self._shown = text
            self.update(fmt.markup(text), layout=False)


class SummaryBar(Line):
    """Counts, rates and latency, refreshed with every poll."""

    _summary: Summary | None = None

    def show(self, summary: Summary) -> None:
        self._summary = summary
        self.show_text(summary_text(summary, self.content_size.width or 1000))

    def on_resize(self, event: Resize) -> None:
        if self._summary is not None:
            self.show(self._summary)


class StatusLine(Line):
    """``updated 12:04:31 (23 ms)``, ``FROZEN`` or ``database unavailable: ...``.

    Given several forms (widest first), it shows the widest that fits, and
    chooses again when the terminal is resized.
    """

    _forms: tuple[str, ...] = ()

    def show(self, text: str | Sequence[str], *, problem: bool = False) -> None:
        self.set_class(problem, "-problem")
        self._forms = (text,) if isinstance(text, str) else tuple(text)
        self.show_text(widest_fitting(self._forms, self.content_size.width or 1000))

    def on_resize(self, event: Resize) -> None:
        if self._forms:
            self.show_text(widest_fitting(self._forms, self.content_size.width or 1000))


def widest_fitting(forms: Sequence[str], width: int) -> str:
    """The first of ``forms`` (markup) that fits ``width`` cells, else the last."""
    for form in forms:
        if Text.from_markup(form).cell_len <= width:
            return form
    return forms[-1]


class HealthBanner(Line):
    """The health verdict when it is not ok (hidden while healthy)."""

    def show(self, report: HealthReport | None) -> None:
        bad = report is not None and not report.ok
        if self.display != bad:
            self.display = bad
        if bad:
            self.show_text(f"UNHEALTHY: {fmt.safe(report.reason)}")  # type: ignore[union-attr]
