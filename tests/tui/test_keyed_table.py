"""KeyedTable keeps rows in the given order and the cursor on its row's key.

A selected row that leaves is not replaced by the row that takes its place.
"""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult
from textual.widgets.data_table import ColumnKey

from tui.widgets.keyed_table import KeyedTable


def rows(keys):
    return [(f"k{n}", (f"k{n}", f"value {n}")) for n in keys]


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.opened: list[str] = []

    def compose(self) -> ComposeResult:
        yield KeyedTable([("id", "id"), ("value", "value")])

    def on_data_table_row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.opened.append(event.row_key.value)


def run(scenario) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=(60, 40)) as pilot:
            await scenario(app.query_one(KeyedTable), pilot)
    asyncio.run(main())


def test_small_and_large_changes_keep_order_and_cursor():
    async def scenario(table, pilot):
        table.sync(rows(range(30)))
        table.move_cursor(row=5)
        await pilot.pause()
        assert table.selected_key == "k5"
        table.sync(rows([100, 101, *range(30)]))  # two new rows on top: in-place path
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(3)] == ["k100", "k101", "k0"]
        assert table.selected_key == "k5" and table.cursor_row == 7
        table.sync(rows([*range(200, 225), 5, 6]))  # most rows gone: rebuilt
        await pilot.pause()
        assert table.row_count == 27 and table.selected_key == "k5"
        assert table.get_row_at(0)[0] == "k200"
        table.sync(rows([1, 2]))  # the selected row is gone: no other row takes its place
        await pilot.pause()
        assert table.row_count == 2 and table.selected_key is None
        assert table.gone_key == "k5" and table.cursor_row in (0, 1)

    run(scenario)


def test_rows_that_change_order_keep_the_cursor_on_its_row():
    async def scenario(table, pilot):
        table.sync(rows(range(6)))
        table.move_cursor(row=1)
        await pilot.pause()
        table.sync(rows([5, 4, 3, 2, 1, 0]))
        await pilot.pause()
        assert [table.get_row_at(i)[0] for i in range(6)] == [f"k{n}" for n in (5, 4, 3, 2, 1, 0)]
        assert table.selected_key == "k1" and table.cursor_row == 4

    run(scenario)


def test_a_gone_row_stays_unselected_until_the_cursor_moves_or_it_comes_back():
    async def scenario(table, pilot):
        table.sync(rows(range(5)))
        table.move_cursor(row=2)
        await pilot.pause()
        table.sync(rows([0, 1, 3, 4]))
        await pilot.pause()
        assert table.selected_key is None and table.gone_key == "k2"
        table.sync(rows([9, 0, 1, 3, 4]))  # more refreshes: still nothing chosen for the user
        await pilot.pause()
        assert table.selected_key is None
        table.sync(rows([9, 0, 1, 2, 3, 4]))  # it came back: selected again
        await pilot.pause()
        assert table.selected_key == "k2" and table.gone_key is None
        table.sync(rows([9, 0, 1, 3, 4]))
        await pilot.pause()
        table.focus()
        await pilot.press("j")  # the first move shows the cursor where the row was
        assert table.selected_key == "k3" and table.gone_key is None
        await pilot.press("j")
        assert table.selected_key == "k4"

    run(scenario)


def test_another_list_starts_on_its_first_row():
    async def scenario(table, pilot):
        table.sync(rows(range(5)))
        table.move_cursor(row=2)
        await pilot.pause()
        table.start_over()
        table.sync(rows(range(10, 15)))
        await pilot.pause()
        assert table.selected_key == "k10" and table.gone_key is None
        table.move_cursor(row=3)
        table.start_over()
        table.sync(rows([13, 20]))  # the selected row is in the new list: it stays selected
        await pilot.pause()
        assert table.selected_key == "k13"

    run(scenario)


def test_a_click_after_the_selected_row_left_selects_the_clicked_row_without_opening_it():
    async def scenario(table, pilot):
        opened = table.app.opened
        table.sync(rows(range(5)))
        table.move_cursor(row=2)
        await pilot.pause()
        table.sync(rows([0, 1, 3, 4]))
        await pilot.pause()
        assert table.selected_key is None
        await pilot.click(table, offset=(2, 3))  # the header, then k0, k1, k3 (under the cursor)
        await pilot.pause()
        assert table.selected_key == "k3" and opened == []
        await pilot.click(table, offset=(2, 3))  # now a click on the selected row opens it
        await pilot.pause()
        assert opened == ["k3"]

    run(scenario)


def test_a_refresh_that_changes_every_row_measures_each_cell_once(monkeypatch):
    # Columns are fitted after cells change; done cell by cell, each cell narrower than
    # its column measured the whole column again: thousands of rows froze the dashboard.
    import textual.widgets._data_table as data_table

    from tui.widgets import keyed_table

    measured = [0]
    measure = data_table.measure

    def counting(*args, **kwargs):
        measured[0] += 1
        return measure(*args, **kwargs)

    monkeypatch.setattr(data_table, "measure", counting)
    monkeypatch.setattr(keyed_table, "measure", counting)
    size = 3000

    async def scenario(table, pilot):
        table.sync([(f"k{n}", (f"k{n}", f"failed {n} seconds ago, long ago"))
                    for n in range(size)])
        await pilot.pause()
        measured[0] = 0
        # When every row's value gets narrower, and one wider than any before
        changed = [(f"k{n}", (f"k{n}", f"{n}s")) for n in range(size)]
        changed[7] = ("k7", ("k7", "w" * 40))
        table.sync(changed)
        await pilot.pause()
        # Then each changed cell is measured a few times at most, not once per row
        assert measured[0] <= 3 * size
        assert table.columns[ColumnKey("value")].content_width == 40
        # And a column whose widest cell got narrower is fitted to the widest left
        table.sync([(f"k{n}", (f"k{n}", f"{n}s")) for n in range(size)])
        await pilot.pause()
        assert table.columns[ColumnKey("value")].content_width == len(f"{size - 1}s")

    run(scenario)
