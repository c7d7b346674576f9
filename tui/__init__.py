"""``python -m tui``: the terminal dashboard over the jobs database."""

from __future__ import annotations

from tui.app import DashboardApp, make_app

__all__ = ["DashboardApp", "make_app"]
