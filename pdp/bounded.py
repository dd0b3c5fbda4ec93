"""Bounded memories: forgetting a dict's oldest entries without rescanning its head.

pdp's memos (request content, token payloads, verified tokens) are plain dicts kept in
insertion order and bounded by forgetting their oldest entries. Deleting the first key one
call at a time is quadratic in CPython: a deleted slot stays in place until the dict is
resized, and every `next(iter(d))` walks over all the slots deleted before it, 9 µs per
call in a full 16,384-entry memo under a stream of new requests. `forget_oldest` deletes
a batch in one pass instead, so that walk is paid once per batch.
"""

from __future__ import annotations

import itertools
from typing import Final, TypeVar

K = TypeVar("K")
V = TypeVar("V")
BATCH_SHARE: Final = 8  # a full memo forgets an eighth of its entries at once


def batch_for(limit: int) -> int:
    """How many entries a memo of at most `limit` entries forgets at once (at least 1)."""
    return max(1, limit // BATCH_SHARE)


def forget_oldest(entries: dict[K, V], count: int) -> list[K]:
    """Delete the `count` oldest entries of `entries` (insertion order); their keys."""
    oldest = list(itertools.islice(entries, count))
    for key in oldest:
        del entries[key]
    return oldest
