"""Job and event ids: UUID text, time-ordered across milliseconds, never repeated."""

from __future__ import annotations

import uuid

from runner.ids import new_id


def test_ids_are_version_7_uuids_in_canonical_text():
    text = new_id()
    parsed = uuid.UUID(text)
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)


def test_ids_sort_by_the_millisecond_they_were_made():
    ids = [new_id(now=1_800_000_000 + n / 1000) for n in range(0, 5000, 7)]
    assert ids == sorted(ids)


def test_ids_made_in_the_same_millisecond_differ():
    ids = {new_id(now=1_800_000_000.0) for _ in range(10_000)}
    assert len(ids) == 10_000


def test_bulk_ids_are_distinct_version_7_uuids_of_their_millisecond():
    from runner.ids import new_ids

    ids = new_ids(10_000, now=1_800_000_000.0)
    assert len(set(ids)) == 10_000
    for text in ids[:100]:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)
    assert {i[:13] for i in ids} == {new_id(now=1_800_000_000.0)[:13]}
