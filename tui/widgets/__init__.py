"""Reusable widgets of the dashboard, one per module."""
