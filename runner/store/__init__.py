"""The data layer: every SQL statement, the SQLite driver and the schema.

Nothing outside this package builds a query. It imports only the base modules
(:mod:`runner.config`, :mod:`runner.errors`, :mod:`runner.ids`,
:mod:`runner.event_patterns`).
"""
