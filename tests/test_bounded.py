"""`pdp.bounded`: forgetting a memo's oldest entries, in insertion order, a batch at once."""

from __future__ import annotations

import pytest

from pdp.bounded import batch_for, forget_oldest


def test_forgets_the_oldest_in_insertion_order_and_keeps_the_rest() -> None:
    """The first keys inserted go first (an update keeps a key's place); the rest stay."""
    entries = {n: str(n) for n in range(10)}
    entries[3] = "three"
    assert forget_oldest(entries, 4) == [0, 1, 2, 3]
    assert list(entries) == [4, 5, 6, 7, 8, 9]
    assert forget_oldest(entries, 100) == [4, 5, 6, 7, 8, 9]
    assert entries == {}
    assert forget_oldest(entries, 1) == []


@pytest.mark.parametrize(("limit", "batch"), [(1, 1), (7, 1), (8, 1), (16_384, 2_048)])
def test_a_batch_is_an_eighth_and_at_least_one(limit: int, batch: int) -> None:
    """A full memo forgets an eighth of its limit, and always at least one entry."""
    assert batch_for(limit) == batch


def test_a_memo_churned_past_its_limit_keeps_the_newest() -> None:
    """The way the memos use it: full, forget a batch, then add; the newest always stay."""
    limit, entries = 64, {}
    for n in range(10_000):
        if len(entries) >= limit:
            forget_oldest(entries, batch_for(limit))
        entries[n] = n
        assert len(entries) <= limit
    assert list(entries)[-1] == 9_999
    assert list(entries) == list(range(10_000 - len(entries), 10_000))
