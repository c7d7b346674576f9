"""What the detail screens share: one record read by id, refreshed live, scrolled, left with esc."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from runner.errors import RunnerError
from runner.store.backend import Store
from tui import format as fmt
from tui.screens.base import DataScreen


class DetailScreen(DataScreen):
    """One record shown as markup; a record that is gone shows why instead."""

    #: The ids of the scrolling container and of the text inside it (the stylesheet uses them).
    SCROLL_ID: ClassVar[str]
    TEXT_ID: ClassVar[str]
    #: The error :meth:`read_detail` raises when the record does not exist (any more).
    NOT_FOUND: ClassVar[type[RunnerError]]

    def __init__(self, record_id: str) -> None:
        super().__init__()
        self.record_id = record_id
        self.detail: Any = None

    def read_detail(self, store: Store, record_id: str) -> Any:
        """The record from the data layer (poll thread)."""
        raise NotImplementedError

    def detail_markup(self, detail: Any, now: float) -> str:
        """The record as markup."""
        raise NotImplementedError

    def compose_body(self) -> Iterable[Widget]:
        with VerticalScroll(id=self.SCROLL_ID):
            yield Static("loading…", id=self.TEXT_ID)

    def on_mount(self) -> None:
        self.dashboard.poll_now()

    def poll_request(self) -> str:
        return self.record_id

    def fetch(self, store: Store, request: Any, now: float) -> Any:
        try:
            return self.read_detail(store, request), now
        except self.NOT_FOUND as exc:
            return str(exc), now

    def apply(self, data: Any) -> None:
        if data is None:
            return
        detail, now = data
        if not isinstance(detail, str):
            self.detail = detail
        text = detail if isinstance(detail, str) else self.detail_markup(detail, now)
        self.query_one(f"#{self.TEXT_ID}", Static).update(fmt.markup(text))

    def action_back(self) -> None:
        self.app.pop_screen()
        self.dashboard.poll_now()

    def action_scroll(self, step: int) -> None:
        self.query_one(f"#{self.SCROLL_ID}", VerticalScroll).scroll_relative(y=step * 3,
                                                                             animate=False)
