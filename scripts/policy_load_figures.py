"""Figures for loading large policy sets: `python scripts/policy_load_figures.py`.

Writes one named location of N random IPv4 /32 ranges (and a policy excluding it) as a Graph
JSON file, then prints, per N: the file size, the wall and CPU seconds to load (read, parse,
validate) and to compile it, and the longest pause of an event loop that keeps ticking every
millisecond while the same load runs on pdp's reload thread, the set loaded before still
alive as in a serving process (what a gRPC call waiting on that loop would wait at most;
the median of three reloads, since on a busy machine the operating system's scheduling
adds to it). `--ranges 150000,600000` picks the sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

from pdp.policy.compile import compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.policy_store import PolicyStore
from pdp.runtime.reload import off_loop

T = TypeVar("T")
LOCATION_ID = "b0c1d2e3-0000-4000-8000-00000000c0a1"


def write_set(folder: Path, count: int) -> Path:
    """A file holding one IP named location of `count` /32 ranges and one policy using it."""
    rng = random.Random(count)  # noqa: S311 - test data, not secrets
    ranges = [
        {
            "@odata.type": "#microsoft.graph.iPv4CidrRange",
            "cidrAddress": f"{rng.randrange(1, 224)}.{rng.randrange(256)}."
            f"{rng.randrange(256)}.{rng.randrange(256)}/32",
        }
        for _ in range(count)
    ]
    location = {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": LOCATION_ID,
        "displayName": "Egress ranges",
        "isTrusted": True,
        "ipRanges": ranges,
    }
    policy = {
        "id": "7a3c0000-0000-4000-8000-000000000001",
        "displayName": "MFA outside the egress ranges",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            "locations": {"includeLocations": ["All"], "excludeLocations": [LOCATION_ID]},
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }
    path = folder / f"ranges-{count}.json"
    path.write_text(json.dumps([location, policy]), encoding="utf-8")
    return path


def timed(action: Callable[[], T]) -> tuple[T, float, float]:
    """Run `action()`; its result, wall seconds and CPU seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


async def longest_pause(path: Path) -> float:
    """The longest gap between 1 ms ticks of this loop while `path` loads off the loop."""
    done = asyncio.Event()
    longest = 0.0

    async def tick() -> None:
        nonlocal longest
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            longest = max(longest, now - last - 0.001)
            last = now

    ticker = asyncio.create_task(tick())
    await off_loop(PolicyStore().load, path)
    done.set()
    await ticker
    return longest


def main() -> None:
    """Print one line of figures per size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranges", default="150000,300000,600000", help="comma-separated sizes")
    sizes = [int(n) for n in parser.parse_args().ranges.split(",")]
    print("ranges   file MB  load s (cpu)   compile s (cpu)   loop pause during a reload s")
    with tempfile.TemporaryDirectory() as folder:
        for count in sizes:
            path = write_set(Path(folder), count)
            (policy_set, _), load_wall, load_cpu = timed(partial(load_policy_set, path))
            _, compile_wall, compile_cpu = timed(partial(compile_policy_set, policy_set))
            pause = statistics.median(asyncio.run(longest_pause(path)) for _ in range(3))
            print(
                f"{count:>7,}  {path.stat().st_size / 1e6:7.1f}  {load_wall:6.2f} ({load_cpu:5.2f})"
                f"   {compile_wall:6.2f} ({compile_cpu:5.2f})     {pause:6.3f}"
            )


if __name__ == "__main__":
    main()
