"""A DataTable whose rows are keyed by id and updated in place.

Refreshing never clears the table: stale rows are removed, changed cells are
updated, new rows are added, and the cursor stays on the row it was on (by
key, not by position), so a live table never makes the cursor jump.

When the selected row itself leaves the list (a job finished and left the
filter, was pruned), no other row takes its place: the cursor is hidden and
:meth:`KeyedTable.target_key` says the row left instead of naming another, until
the user moves the cursor again (the first ``j``/``k`` shows it where the row
was, ``g``/``G`` and a click go where they point). Should the row come back,
it is selected again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual import events
from textual.binding import Binding
from textual.render import measure
from textual.widgets import DataTable
from textual.widgets._data_table import RowDoesNotExist, default_cell_formatter


class KeyedTable(DataTable):
    """DataTable with vi keys and :meth:`sync` for keyed, in-place updates."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("g", "scroll_top", "Top", show=False),
        Binding("G", "scroll_bottom", "Bottom", show=False),
    ]

    def __init__(self, columns: Sequence[tuple[str, str]], *,
                 narrow: Sequence[tuple[str, int | None]] | None = None,
                 narrow_below: int = 120, noun: str = "row", **kwargs: object) -> None:
        """``narrow``: (column key, width or None to fill) shown below ``narrow_below`` cells.

        A narrow terminal drops columns instead of scrolling sideways. ``noun``
        names what a row is ("job") in what the table says.
        """
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)  # type: ignore[arg-type]
        self._all = list(columns)
        self._labels = dict(columns)
        self._narrow = list(narrow) if narrow else None
        self._narrow_below = narrow_below
        self._layout: tuple[tuple[str, int | None], ...] = ()
        self._index: list[int] = []
        self._set_columns([(key, None) for key, _ in columns])
        self._order: list[str] = []
        self._values: dict[str, tuple] = {}
        self._noun = noun
        self._gone: str | None = None
        """Key of the selected row after it left the list, until the cursor moves."""
        self._another_list = False

    @property
    def shown_columns(self) -> list[str]:
        """Keys of the columns shown now."""
        return [key for key, _ in self._layout]

    def _set_columns(self, layout: Sequence[tuple[str, int | None]]) -> None:
        self._layout = tuple(layout)
        keys = [key for key, _ in self._all]
        self._index = [keys.index(key) for key, _ in layout]
        self._column_keys = [key for key, _ in layout]
        for key, width in layout:
            self.add_column(self._labels[key], key=key, width=width)

    def on_resize(self, event: events.Resize) -> None:
        self.fit(event.size.width)

    def fit(self, width: int) -> None:
        """Show every column, or the narrow set when ``width`` is below the threshold."""
        if self._narrow is None:
            return
        if width >= self._narrow_below:
            layout = [(key, None) for key, _ in self._all]
        else:
            fixed = sum(w for _, w in self._narrow if w) + 2 * len(self._narrow) + 2
            layout = [(key, w if w else max(8, width - fixed)) for key, w in self._narrow]
        if tuple(layout) == self._layout:
            return
        rows = [(key, self._values[key]) for key in self._order]
        selected = self.selected_key
        with self.app.batch_update():
            self.clear(columns=True)
            self._set_columns(layout)
            self._order, self._values = [], {}
            self._rebuild(rows, selected)

    def _cells(self, values: tuple) -> tuple:
        return tuple(values[i] for i in self._index)

    @property
    def selected_key(self) -> str | None:
        """Key of the selected row; None when the table is empty or the selected row left."""
        if not self.row_count or self._gone is not None:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None

    @property
    def gone_key(self) -> str | None:
        """Key of the selected row that left the list, until the cursor moves."""
        return self._gone

    def target_key(self) -> str | None:
        """The key an action on the selected row acts on.

        None when nothing is selected; when the selected row left the list, it
        also says so, rather than let the row now under the cursor be acted on.
        """
        if self._gone is not None:
            self.notify(f"the selected {self._noun} left the list: move the cursor to "
                        f"choose another", severity="warning")
            return None
        return self.selected_key

    def start_over(self) -> None:
        """The next rows are another list the user asked for (a page, a filter, a sort).

        The selected row stays selected if it is in that list too; otherwise the
        first row is, rather than the selection being lost.
        """
        self._another_list = True

    def _lose(self, key: str) -> None:
        self._gone = key
        self.cursor_type = "none"

    def _choose(self) -> None:
        """The row under the cursor is selected again (the user moved, or it came back)."""
        self._gone = None
        if self.cursor_type != "row":
            self.cursor_type = "row"

    def move_cursor(self, *, row: int | None = None, column: int | None = None,
                    animate: bool = False, scroll: bool = True) -> None:
        """Move the cursor, selecting the row it lands on (also after the selected row left)."""
        self._choose()
        super().move_cursor(row=row, column=column, animate=animate, scroll=scroll)

    def _place(self, row: int) -> None:
        # A refresh keeps the cursor on its row: that is no choice of the user's.
        super().move_cursor(row=row, animate=False, scroll=False)

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=max(0, self.row_count - 1))

    def _step(self, move: Callable[[], None]) -> None:
        # While the selected row is gone, the first move key only shows the cursor
        # again, on the row now where it was.
        if self._gone is None:
            move()
        self._choose()

    def action_cursor_up(self) -> None:
        self._step(super().action_cursor_up)

    def action_cursor_down(self) -> None:
        self._step(super().action_cursor_down)

    def action_page_up(self) -> None:
        self._step(super().action_page_up)

    def action_page_down(self) -> None:
        self._step(super().action_page_down)

    def action_select_cursor(self) -> None:
        if self.target_key() is not None:
            super().action_select_cursor()

    def on_click(self, event: events.Click) -> None:
        # While the selected row is gone, a click on a row selects it, and only
        # that: opening needs a second click, on a row the user can see selected.
        row = event.style.meta.get("row")
        if self._gone is not None and isinstance(row, int) and 0 <= row < self.row_count:
            event.prevent_default()
            event.stop()
            self.move_cursor(row=row)

    def sync(self, rows: Sequence[tuple[str, tuple]]) -> None:
        """Show exactly ``rows`` (key, cell values) in this order, changing as little as can be."""
        selected = self._gone or self.selected_key
        wanted = dict(rows)
        order = [key for key, _ in rows]
        if not wanted and not self._order:
            return
        another, self._another_list = self._another_list, False
        stale = sum(1 for key in self._order if key not in wanted)
        if stale > max(10, len(self._order) // 2):
            self._rebuild(rows, selected)
        else:
            self._update(rows, wanted, order, selected)
        if selected is None or selected in wanted:
            self._choose()
        elif another:
            self.move_cursor(row=0, scroll=False)
        else:
            self._lose(selected)

    def _update(self, rows: Sequence[tuple[str, tuple]], wanted: dict[str, tuple],
                order: list[str], selected: str | None) -> None:
        changed: dict[str, list[tuple[str, object]]] = {}
        with self.app.batch_update():
            for key in [k for k in self._order if k not in wanted]:
                self.remove_row(key)
                self._values.pop(key, None)
            for key, values in rows:
                old = self._values.get(key)
                if old is None:
                    self.add_row(*self._cells(values), key=key)
                elif old != values:
                    for column, (before, after) in zip(
                            self._column_keys, zip(self._cells(old), self._cells(values),
                                                   strict=True), strict=True):
                        if before != after:
                            self.update_cell(key, column, after)
                            changed.setdefault(column, []).append((key, after))
                self._values[key] = values
            self._fit_changed(changed)
            current = [k for k in self._order if k in wanted]
            current += [k for k in order if k not in current]
            if current != order:
                position = {key: i for i, key in enumerate(order)}
                self._sort_by_position(position)
            self._order = order
            if selected in wanted:
                index = self.get_row_index(selected)
                if index != self.cursor_row:
                    self._place(index)

    def _fit_changed(self, changed: dict[str, list[tuple[str, object]]]) -> None:
        """Fit each column to its changed cells, measuring the whole column at most once.

        DataTable fits a column per cell updated with ``update_width``, and measures
        every cell of the column again for each one narrower than the column: with
        every row's age changing at each refresh, that is rows x rows measures, and
        thousands of rows froze the dashboard. Only the widest changed cell of a
        column is handed on: wider than the column, the column grows to it; narrower,
        the column is measured once, and fits every cell, changed or not.
        """
        console = self.app.console
        for column, cells in changed.items():
            key, value = max(cells, key=lambda cell: measure(
                console, default_cell_formatter(cell[1], wrap=False, height=1), 1))
            self.update_cell(key, column, value, update_width=True)

    def _rebuild(self, rows: Sequence[tuple[str, tuple]], selected: str | None) -> None:
        # Most rows went away (a busy first page): building anew is cheaper than
        # removing and sorting row by row. The cursor stays on its job if it is
        # still shown, else on the same line (hidden: see sync); the scroll
        # position is kept.
        line, scroll = self.cursor_row, self.scroll_y
        with self.app.batch_update():
            self.clear()
            self._values = dict(rows)
            self._order = [key for key, _ in rows]
            for key, values in rows:
                self.add_row(*self._cells(values), key=key)
            if selected in self._values:
                line = self.get_row_index(selected)
            self._place(min(line, max(0, self.row_count - 1)))
            self.scroll_y = scroll

    def _sort_by_position(self, position: dict[str, int]) -> None:
        # DataTable.sort hands the key function cell values, not row keys: map the
        # values we keep per key back to the wanted position.
        by_values = {self._cells(self._values[key]): pos for key, pos in position.items()}
        self.sort(key=lambda values: by_values.get(tuple(values), 0))


class OpenableTable(KeyedTable):
    """A KeyedTable whose rows open something: ``enter`` is shown in the footer."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]
