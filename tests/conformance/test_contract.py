"""Each backend implements the whole Store protocol, with the protocol's signatures."""

from __future__ import annotations

import inspect

from runner.store.backend import Store


def _members() -> list[str]:
    # Store is the union of the protocols of each concern: read the operations of all of them.
    parts = [part for part in Store.__mro__ if part.__module__.startswith("runner.store.")]
    return sorted({name for part in parts for name, value in vars(part).items()
                   if not name.startswith("_")
                   and (callable(value) or isinstance(value, property))})


def test_the_backend_is_a_store(store):
    assert isinstance(store, Store)


def test_every_operation_has_the_protocol_signature(store):
    mismatched = []
    for name in _members():
        declared = getattr(Store, name)
        if isinstance(declared, property):
            assert isinstance(getattr(type(store), name), property), name
            continue
        ours = inspect.signature(getattr(type(store), name))
        if ours != inspect.signature(declared):
            mismatched.append(f"{name}{ours} != {inspect.signature(declared)}")
    assert mismatched == []


def test_the_protocol_covers_the_contract():
    # The operations DESIGN.md's "Backends: one contract" names, by their names here.
    contract = {"enqueue", "claim", "heartbeat", "complete", "retry", "bury", "recover_orphans",
                "fire", "insert_events", "fan_out", "write_logs", "prune_retention"}
    assert contract <= set(_members())


def test_each_operation_belongs_to_exactly_one_part_of_the_protocol():
    # Store only combines the protocols of each concern; an operation declared twice
    # (or on Store itself) would let two parts drift apart.
    owners: dict[str, list[str]] = {}
    for part in Store.__mro__:
        if part.__module__.startswith("runner.store."):
            for name, value in vars(part).items():
                if not name.startswith("_") and (callable(value) or isinstance(value, property)):
                    owners.setdefault(name, []).append(part.__name__)
    assert {name: parts for name, parts in owners.items() if len(parts) > 1} == {}
    assert "Store" not in {part for parts in owners.values() for part in parts}
