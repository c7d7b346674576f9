"""KeyedTable keeps rows in the given order and the cursor on its row's key."""

from __future__ import annotations

import asyncio

from textual.app import App, ComposeResult

from tui.widgets.keyed_table import KeyedTable


def rows(keys):
    return [(f"k{n}", (f"k{n}", f"value {n}")) for n in keys]


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield KeyedTable([("id", "id"), ("value", "value")])


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
        table.sync(rows([1, 2]))  # the selected row is gone: the cursor stays in range
        await pilot.pause()
        assert table.row_count == 2 and table.selected_key in ("k1", "k2")

    run(scenario)
