"""Settings of pdp's own risk detection, with the defaults README documents.

Defaults come from the public anchors in docs/impossible-travel.md: Okta's
velocity behaviour (805 km/h, last 20 sign-ins), Elastic / authentik / Airlock (about
1,000 km/h, 100 to 500 km tolerances), Okta's 20 km same-place radius, Defender's one-month
baseline. `pdp serve` fills this from flags / PDP_* environment variables.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FailureMode(enum.StrEnum):
    """What pdp's risk is when the risk store cannot answer in time."""

    OPEN = "open"  # decide on upstream risk alone; the response is marked degraded
    CLOSED = "closed"  # treat pdp's sign-in risk as high


class RecordPolicy(enum.StrEnum):
    """Which sign-ins are written to the history."""

    EVALUATED = "evaluated"  # every evaluated sign-in (CA runs after the first factor)
    ALLOWED = "allowed"  # only sign-ins that were allowed


@dataclass(frozen=True, slots=True)
class TravelSettings:
    """Thresholds of the impossible-travel detection."""

    impossible_speed_kmh: float = 1000.0  # with >= impossible_distance_km: high
    impossible_distance_km: float = 500.0
    unlikely_speed_kmh: float = 805.0  # with >= unlikely_distance_km: medium
    unlikely_distance_km: float = 100.0
    same_place_km: float = 20.0  # pairs closer than this (effective) are not judged
    min_elapsed_s: float = 60.0  # elapsed time floor, so simultaneous attempts compare
    unfamiliar_after: int = 5  # sign-ins of history before a new country is unfamiliar (low)
    history_size: int = 20  # sign-ins kept per user
    # Sign-ins count for 30 days, measured in sign-in time (Redis keys also expire 30 days
    # after their last write, which only bounds memory).
    history_window_s: int = 30 * 86_400


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """Everything `pdp serve` needs to build its risk assessor."""

    redis_url: str = ""  # "" = the embedded in-process store; redis:// or rediss://
    redis_mode: str = "standalone"  # standalone | sentinel | cluster
    sentinel_service: str = "mymaster"  # the monitored master's name in sentinel mode
    redis_timeout_ms: float = 5.0  # per-call budget; past it, decide without pdp's risk
    failure_mode: FailureMode = FailureMode.OPEN
    # The circuit breaker opens when, over the last `breaker_window_s`, at least
    # `breaker_min_calls` round trips were made and `breaker_failure_rate` of them failed;
    # it stays open `breaker_reset_s`, then lets one probe through.
    breaker_failure_rate: float = 0.5
    breaker_min_calls: int = 20
    breaker_window_s: float = 10.0
    breaker_reset_s: float = 2.0
    geoip_db: str = ""  # path of a MaxMind-format City or Country database
    trusted_ranges: tuple[str, ...] = ()  # VPN / proxy egress CIDRs not judged by travel
    record: RecordPolicy = RecordPolicy.EVALUATED
    force_record: bool = False  # record even when no policy reads sign-in risk
    memory_budget_mb: int = 128  # the in-process store's memory, per worker (LRU beyond)
    travel: TravelSettings = TravelSettings()
