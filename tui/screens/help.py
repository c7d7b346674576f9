"""The ``?`` screen: every key of the screen underneath and of the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.screens import SCREENS

#: Keys that work on every screen; each screen lists its own (its ``HELP``).
GLOBAL_KEYS = [
    (f"1-{len(SCREENS)}", "switch screen (or click a tab on top)"),
    ("tab", "next table or field"),
    ("z", "freeze or resume refreshing"), ("ctrl+r", "refresh now"), ("?", "this help"),
    ("q", "quit"),
]


class HelpScreen(ModalScreen[None]):
    """Keys of the current screen, then the keys that work everywhere."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]

    def __init__(self, title: str, keys: list[tuple[str, str]], *, read_only: bool) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys
        self.read_only = read_only

    def compose(self) -> ComposeResult:
        lines = [f"[b]{self.title_text}[/]", ""]
        lines += [f"  [b]{key:<14}[/] {text}" for key, text in self.keys]
        lines += ["", "[b]Everywhere[/]", ""]
        lines += [f"  [b]{key:<14}[/] {text}" for key, text in GLOBAL_KEYS]
        if self.read_only:
            lines += ["", "[yellow]read-only: actions are off[/]"]
        with VerticalScroll(id="help"):
            yield Static("\n".join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
