"""The summary strip on every screen, with the refresh status beside it."""

from __future__ import annotations

from textual.widgets import Static

from runner.readmodel.dashboard import Summary
from tui import format as fmt


def summary_text(s: Summary) -> str:
    """The strip as markup (pure, so it can be tested without a terminal)."""
    late = s.oldest_waiting_age or 0
    latency = f"[red]{fmt.age(s.oldest_waiting_age)}[/]" if late > 60 else fmt.age(
        s.oldest_waiting_age)
    dead = f"[red]{fmt.count(s.dead)}[/]" if s.dead else "0"
    return (f"waiting [b]{fmt.count(s.waiting)}[/]  running [b]{fmt.count(s.running)}[/]  "
            f"scheduled [b]{fmt.count(s.scheduled)}[/]  retrying [b]{fmt.count(s.retrying)}[/]  "
            f"dead [b]{dead}[/]  done/min [b]{fmt.count(s.completed_per_minute)}[/]  "
            f"errors [b]{fmt.rate(s.error_rate)}[/]  oldest waiting [b]{latency}[/]")


class Line(Static):
    """A one-row Static that repaints only when its text changes (no layout pass)."""

    _shown: str | None = None

    def show_text(self, text: str) -> None:
        if text != self._shown:
            self._shown = text
            self.update(text, layout=False)


class SummaryBar(Line):
    """Counts, rates and latency, refreshed with every poll."""

    def show(self, summary: Summary) -> None:
        self.show_text(summary_text(summary))


class StatusLine(Line):
    """``updated 12:04:31 (23 ms)``, ``FROZEN`` or ``database unavailable: ...``."""

    def show(self, text: str, *, problem: bool = False) -> None:
        self.set_class(problem, "-problem")
        self.show_text(text)
