"""Help, footer and behaviour agree on every screen; tabs can be clicked."""

from __future__ import annotations

from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tests.tui.conftest import drive, settle
from tui.screens import SCREENS
from tui.screens.help import GLOBAL_KEYS, HelpScreen
from tui.screens.job_detail import JobDetailScreen
from tui.widgets.keyed_table import KeyedTable

NAMES = {"/": "slash", "[": "left_square_bracket", "]": "right_square_bracket", "@": "at",
         "esc": "escape", "?": "question_mark"}
#: What each screen's footer must show (by Textual key name).
FOOTER = {
    "overview": set(),
    "jobs": {"enter", "slash", "c", "R", "D", "y", "left_square_bracket",
             "right_square_bracket", "r", "d"},
    "failures": {"enter", "r", "d"},
    "events": {"enter", "r", "R"},
    "schedules": {"p", "t"},
    "logs": {"f", "l", "slash"},
    "queues": {"p"},
    "": {"escape", "r", "d", "c", "y"},
}


def help_keys(entries: list[tuple[str, str]]) -> set[str]:
    keys = set()
    for text, _ in entries:
        first, dash, last = text.partition("-")
        if dash and first.isdigit() and last.isdigit():
            keys |= {str(n) for n in range(int(first), int(last) + 1)}
            continue
        for part in text.split(","):
            for key in part.strip().split(" / "):
                keys.add(NAMES.get(key.strip(), key.strip()))
    return keys


async def check_screen(app, pilot) -> None:
    screen = app.screen
    active = set(app.active_bindings)
    promised = help_keys(screen.HELP) | help_keys(GLOBAL_KEYS)
    assert promised <= active, f"{screen.TITLE}: help promises {promised - active}"
    footer = {key.key for key in screen.query(FooterKey)}
    missing = FOOTER[screen.MODE] - footer
    assert not missing, f"{screen.TITLE}: footer lacks {missing}"
    await pilot.press("question_mark")
    await settle(app, pilot)
    assert isinstance(app.screen, HelpScreen)
    text = str(app.screen.query_one(Static).render())
    assert all(description in text for _, description in screen.HELP)
    await pilot.press("escape")
    await settle(app, pilot)


def test_every_key_in_help_is_bound_and_the_footer_shows_the_actions(dashboard, seeded):
    async def scenario(app, pilot):
        for number, cls in enumerate(SCREENS, 1):
            await pilot.press(str(number))
            await settle(app, pilot)
            assert app.current_mode == cls.MODE
            await check_screen(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, JobDetailScreen)
        await check_screen(app, pilot)

    drive(dashboard(), scenario, size=(200, 40))


def test_help_names_the_number_key_of_every_screen():
    numbers = help_keys([entry for entry in GLOBAL_KEYS if "switch screen" in entry[1]])
    assert numbers == {str(n) for n in range(1, len(SCREENS) + 1)}


def test_tabs_switch_screens_when_clicked(dashboard, seeded):
    async def scenario(app, pilot):
        await pilot.click("#tab-jobs")
        await settle(app, pilot)
        assert app.current_mode == "jobs"
        assert app.screen.query_one("#jobs", KeyedTable).row_count == 11
        await pilot.click("#tab-logs")
        await settle(app, pilot)
        assert app.current_mode == "logs"

    drive(dashboard(), scenario)
