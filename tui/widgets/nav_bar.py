"""The row of screen tabs: number key, title and a count per screen; click to switch."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.containers import Horizontal
from textual.widgets import Static

#: Tab titles when the full ones do not fit: no tab is ever cut off.
SHORT_TITLES = {"Overview": "Over", "Failures": "Fail", "Schedules": "Sched",
                "Events": "Evts"}


def tab_labels(tabs: list[tuple[str, str, str, str]], width: int) -> list[str]:
    """The widest labels of ``(key, title, count, mode)`` tabs that fit ``width`` cells."""
    full = [f"{key} {title}" + (f" ({count})" if count else "") for key, title, count, _ in tabs]
    if sum(len(label) + 3 for label in full) <= width:
        return full
    return [f"{key} {SHORT_TITLES.get(title, title)}" + (f" {count.split()[0]}" if count else "")
            for key, title, count, _ in tabs]


class NavTab(Static):
    """One tab; a click shows its screen."""

    def __init__(self, mode: str, label: str = "", **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.mode = mode
        self._label = label

    def show_label(self, label: str) -> None:
        """Repaint only when the label changed (a layout pass on every refresh costs)."""
        if label != self._label:
            self._label = label
            self.update(label)

    async def on_click(self, event: events.Click) -> None:
        event.stop()
        await self.app.run_action(f"show_screen('{self.mode}')")


class NavBar(Horizontal):
    """``1 Overview  2 Jobs (1,204 live)  3 Failures (12) ...``, the current one marked."""

    _tabs: list[tuple[str, str, str, str]] | None = None
    _current = ""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._widgets: dict[str, NavTab] = {}

    def show(self, tabs: list[tuple[str, str, str, str]], current: str) -> None:
        """Render ``(key, title, count, mode)`` tabs; ``current`` is the active title."""
        self._tabs, self._current = tabs, current
        labels = tab_labels(tabs, self.size.width or 1000)
        for (_, title, _, mode), label in zip(tabs, labels, strict=True):
            tab = self._widgets.get(mode)
            if tab is None:  # the first poll brings the registry's tabs
                tab = self._widgets[mode] = NavTab(mode, id=f"tab-{mode}")
                self.mount(tab)
            if tab.has_class("-current") != (title == current):
                tab.set_class(title == current, "-current")
            tab.show_label(f" {label} ")

    def on_resize(self, event: events.Resize) -> None:
        if self._tabs is not None:
            self.show(self._tabs, self._current)

    @property
    def text(self) -> str:
        """The tabs as plain text (what a user reads)."""
        return " ".join(Text.from_markup(str(tab.render())).plain.strip()
                        for tab in self.query(NavTab))
