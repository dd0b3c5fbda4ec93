"""Bounded counters for streaming reports: memory stays flat however long the log is.

`Distinct` counts distinct values exactly up to a limit, then switches to a HyperLogLog
(Flajolet et al. 2007, with the small-range correction; 2^14 registers, a standard error
of about 0.8 %) and says its figure is an estimate. `Capped` counts by key for the first
`limit` keys and folds later keys into one "(other)" entry, so its figures stay exact for
what it shows.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Hashable

OTHER = "(other)"
_P = 14
_M = 1 << _P
_ALPHA = 0.7213 / (1 + 1.079 / _M)


class Distinct:
    """How many distinct values were added: exact below `limit`, estimated above."""

    __slots__ = ("_exact", "_limit", "_registers")

    def __init__(self, limit: int = 10_000) -> None:
        self._exact: set[str] | None = set()
        self._limit = limit
        self._registers: bytearray | None = None

    def add(self, value: str) -> None:
        """Count `value` (once, however often it is added)."""
        exact = self._exact
        if exact is not None:
            exact.add(value)
            if len(exact) > self._limit:
                self._registers = bytearray(_M)
                for item in exact:
                    self._hll_add(item)
                self._exact = None
            return
        self._hll_add(value)

    def _hll_add(self, value: str) -> None:
        registers = self._registers
        assert registers is not None
        h = int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")
        index = h >> (64 - _P)
        rest = h & ((1 << (64 - _P)) - 1)
        rank = (64 - _P) - rest.bit_length() + 1
        registers[index] = max(registers[index], rank)

    @property
    def estimated(self) -> bool:
        """Whether the count is a HyperLogLog estimate."""
        return self._exact is None

    def count(self) -> int:
        """The number of distinct values (estimated once past the limit)."""
        if self._exact is not None:
            return len(self._exact)
        registers = self._registers
        assert registers is not None
        raw = _ALPHA * _M * _M / sum(2.0**-r for r in registers)
        zeros = registers.count(0)
        if raw <= 2.5 * _M and zeros:
            return round(_M * math.log(_M / zeros))
        return round(raw)


class Capped:
    """Counts per key, for at most `limit` keys; later keys count under OTHER."""

    __slots__ = ("counts", "limit")

    def __init__(self, limit: int = 1000) -> None:
        self.counts: dict[Hashable, int] = {}
        self.limit = limit

    def add(self, key: Hashable, n: int = 1) -> None:
        """Count `n` for `key`."""
        counts = self.counts
        if key in counts:
            counts[key] += n
        elif len(counts) < self.limit:
            counts[key] = n
        else:
            counts[OTHER] = counts.get(OTHER, 0) + n

    def top(self, n: int) -> list[tuple[Hashable, int]]:
        """The `n` largest counts, largest first (ties by key)."""
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]
