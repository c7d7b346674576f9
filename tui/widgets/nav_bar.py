"""The row of screen tabs: number key, title and a count per screen."""

from __future__ import annotations

from tui.widgets.summary_bar import Line


class NavBar(Line):
    """``1 Overview  2 Jobs (1,204)  3 Failures (12) ...`` with the current one marked."""

    def show(self, tabs: list[tuple[str, str, str]], current: str) -> None:
        """Render ``(key, title, count)`` tabs; ``current`` is the active title."""
        parts = []
        for key, title, count in tabs:
            label = f"{key} {title}" + (f" ({count})" if count else "")
            if title == current:
                parts.append(f"[reverse b] {label} [/]")
            else:
                parts.append(f" {label} ")
        self.show_text(" ".join(parts))
