"""The footer of key bindings, fitted to the terminal's width as htop and k9s do.

Textual's footer lays every key out in one row and cuts what does not fit, so at
80 columns the jobs screen lost its filter, paging, help and quit keys. This one
chooses the widest form that fits: full labels, then the compact style, then
short labels, then it leaves out the least needed keys one at a time. Quit,
help and freeze are never left out; every key stays listed in the help screen.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Actions always shown: how to leave, how to learn the other keys, how to stop the refresh.
ESSENTIAL = ("quit", "help", "freeze")

#: Actions left out first when the row is too narrow, the first one first.
SPARE = ("copy_json", "copy", "jump", "cycle_sort", "retry_all", "discard_all", "replay_all",
         "logs", "handler_jobs", "skip_next", "cycle_range", "level", "home", "end", "open")

#: Labels for narrow terminals.
SHORT = {"Discard all": "Disc all", "Discard group": "Discard", "Retry group": "Retry",
         "Jobs / expand": "Open", "Pause/resume": "Pause", "Unhandled only": "Unhandled",
         "Handler jobs": "Handlers", "Chart range": "Range", "Go to time": "Time",
         "Copy payload": "Copy", "Copy id": "Copy", "Copy JSON": "JSON", "Skip next": "Skip",
         "Replay failed": "Replay", "Replay to all": "Repl all"}


@dataclass(frozen=True)
class Key:
    """One key shown in the footer."""

    key: str
    display: str
    description: str
    action: str
    enabled: bool
    tooltip: str


def fitted(keys: list[Key], width: int) -> tuple[list[Key], bool]:
    """The keys to show within ``width`` cells, and whether in the compact style (pure).

    Keys keep their order; labels are shortened, then spare keys left out.
    """
    def cells(shown: list[Key], compact: bool) -> int:
        # A key is " k desc " in the normal style, "k desc" and a one-cell gap when compact.
        pad = 2 if compact else 3
        return sum(Text(k.display).cell_len + len(k.description) + pad for k in shown)

    if cells(keys, compact=False) <= width:
        return keys, False
    if cells(keys, compact=True) <= width:
        return keys, True
    shown = [Key(k.key, k.display, SHORT.get(k.description, k.description), k.action,
                 k.enabled, k.tooltip or k.description) for k in keys]
    ranked = sorted((k for k in shown if k.action.split("(")[0] not in ESSENTIAL),
                    key=lambda k: (k.action.split("(")[0] not in SPARE,
                                   SPARE.index(k.action.split("(")[0])
                                   if k.action.split("(")[0] in SPARE else -shown.index(k)))
    for spare in ranked:
        if cells(shown, compact=True) <= width:
            break
        shown.remove(spare)
    return shown, True


class KeyFooter(Footer):
    """Key bindings of the active screen, as many as the width allows."""

    _laid_out_for = 0

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys = [Key(binding.key, self.app.get_key_display(binding), binding.description,
                    binding.action, enabled, tooltip)
                for (_, binding, enabled, tooltip) in self.screen.active_bindings.values()
                if binding.show]
        width = self.size.width or self.app.size.width
        self._laid_out_for = width
        shown, compact = fitted(keys, width)
        self.set_reactive(Footer.compact, compact)
        self.set_class(compact, "-compact")
        for key in shown:
            yield FooterKey(key.key, key.display, key.description, key.action,
                            disabled=not key.enabled, tooltip=key.tooltip,
                            ).data_bind(compact=Footer.compact)

    def on_resize(self, event: Resize) -> None:
        if self._bindings_ready and event.size.width != self._laid_out_for:
            self.call_after_refresh(self.recompose)
