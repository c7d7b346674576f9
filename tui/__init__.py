"""``python -m tui``: the terminal dashboard over the jobs database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.app import DashboardApp, make_app

__all__ = ["DashboardApp", "make_app"]


def __getattr__(name: str) -> Any:
    # Imported when first asked for, not with the package: ``python -m tui`` imports this
    # package before its ``__main__``, which must be running (to exit quietly on SIGINT)
    # before Textual and the runner are imported, which takes a second.
    if name in __all__:
        from tui import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
