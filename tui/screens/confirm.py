"""The modals in front of every destructive action."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui import format as fmt


class ConfirmScreen(ModalScreen[bool]):
    """States what will happen (with the count) and waits for ``y`` or ``n``."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(fmt.markup(self.question), id="question")
            yield Static("[b]y[/] yes    [b]n[/] / [b]esc[/] no", id="choices")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class TypedConfirmScreen(ModalScreen[bool]):
    """A bulk action: goes ahead only when ``expected`` (the count) is typed exactly."""

    BINDINGS = [Binding("escape", "cancel", "No")]

    def __init__(self, question: str, expected: str) -> None:
        super().__init__()
        self.question = question
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(fmt.markup(self.question), id="question")
            yield Static(f"Type [b]{self.expected}[/] and press enter to go ahead; "
                         "[b]esc[/] cancels.", id="choices")
            yield Input(placeholder=self.expected, id="typed")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip().replace(",", "").replace("_", "")
        if typed == self.expected.replace(",", ""):
            self.dismiss(True)
        else:
            self.query_one("#choices", Static).update(fmt.markup(
                f"[red]{fmt.safe(event.value.strip()) or 'nothing'} is not {self.expected}[/]: "
                f"type [b]{self.expected}[/] to go ahead, or [b]esc[/] to cancel."))

    def action_cancel(self) -> None:
        self.dismiss(False)
