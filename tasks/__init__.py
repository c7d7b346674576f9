"""Example task modules loaded by the default settings.toml."""
