"""Reads for the CLI, the dashboard, metrics and health: views over the store, no writes."""
