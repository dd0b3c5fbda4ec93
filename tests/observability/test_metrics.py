"""The metric declarations: each in README's table, buckets that resolve 50 us to 1 s."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

from pdp.observability import metrics

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_declared_metric_is_in_the_readme_table_and_no_other() -> None:
    """README's metrics table lists exactly the metrics pdp declares."""
    declared = {name for name, _ in metrics.label_names()}
    documented = set(
        re.findall(
            r"^\| `([a-z_]+)` \| (?:counter|gauge|histogram) \|", README.read_text("utf-8"), re.M
        )
    )
    assert documented == declared


def test_grpc_handling_buckets_resolve_50_microseconds_to_1_second() -> None:
    """The handling histogram starts at 50 us, ends at 1 s, and is finer than 2.5x per step."""
    buckets = metrics.HANDLING_BUCKETS
    assert buckets[0] == 0.00005
    assert buckets[-1] == 1.0
    assert all(b / a <= 2.5 for a, b in itertools.pairwise(buckets))


def test_no_metric_has_a_label_naming_a_request_identity() -> None:
    """Labels stay bounded: no user, IP, device or application id labels."""
    forbidden = {"user_id", "ip", "ip_address", "device_id", "app_id", "application_id"}
    for name, labels in metrics.label_names():
        assert not forbidden & set(labels), name
