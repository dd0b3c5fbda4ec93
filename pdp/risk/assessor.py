"""pdp's own sign-in risk: where the user signs in from, judged against where they were.

`HistoryAssessor.assess` is the `RiskAssessor` the Decider calls once per decision. In
order, each step ending the work when it says so:

1. No loaded policy reads sign-in risk (and recording is not forced): nothing to do, no I/O.
2. Workload identities and sign-ins without a user id have no travel history: no risk.
3. An IP in a trusted range (named locations marked trusted, and `trusted_ranges`, e.g.
   VPN / proxy egress) says nothing about where the person is: not judged, not stored.
4. Geo-IP fills the location (`GeoResolver`); a sign-in with none is not judged or stored.
5. The sign-in becomes a record (`pdp.risk.record`) and ONE `RiskStore.record_and_fetch`
   returns what the judgement needs (the travel window, the country summary), recording it
   in the same round trip under `RecordPolicy.EVALUATED`; then `travel.judge` judges it.

Under `RecordPolicy.ALLOWED` the read records nothing, and the Decider calls
`record_allowed` after an allow decision: that costs a second round trip per allowed
sign-in. When the store cannot answer (down, past its time budget, breaker open) the
failure mode decides: `open` gives a degraded assessment with no risk of pdp's own,
`closed` a degraded one with a high `riskStoreUnavailable` detection. `assess` never raises.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import structlog
from netaddr import IPNetwork

from pdp.context import SignInContext
from pdp.policy.compile import CompiledPolicySet
from pdp.risk import record
from pdp.risk.assessment import NO_RISK, Assessment, Detection, Place
from pdp.risk.geo import GeoResolver
from pdp.risk.memory_store import MemoryStore
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import FailureMode, RecordPolicy, RiskSettings
from pdp.risk.store import History, RiskStore, RiskStoreUnavailable
from pdp.risk.travel import judge, level_of, travel_window_s

log = structlog.get_logger(__name__)

RISK_STORE_UNAVAILABLE = "riskStoreUnavailable"
DEGRADED_OPEN = Assessment(degraded=True)
DEGRADED_CLOSED = Assessment(
    sign_in_risk="high",
    degraded=True,
    detections=(Detection(RISK_STORE_UNAVAILABLE, "high"),),
)


class TrustedRanges:
    """IP ranges not judged by travel: disjoint sorted intervals per address family."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for network in networks:
            spans[network.version].append((network.first, network.last))
        self._tables = {version: _merge(found) for version, found in spans.items()}

    def __contains__(self, address: tuple[int, int]) -> bool:
        """Whether (version, value) lies in a range."""
        version, value = address
        starts, ends = self._tables.get(version, ([], []))
        i = bisect.bisect_right(starts, value) - 1
        return i >= 0 and value <= ends[i]


def parse_cidrs(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Networks from CIDR strings; raises ValueError naming a bad one."""
    networks = []
    for cidr in cidrs:
        try:
            networks.append(IPNetwork(cidr))
        except Exception as exc:  # noqa: BLE001 - netaddr raises AddrFormatError, ValueError, ...
            raise ValueError(f"trusted range {cidr!r} is not a CIDR ({exc})") from None
    return tuple(networks)


def _merge(spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(spans):
        if ends and first <= ends[-1] + 1:
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends


class HistoryAssessor:
    """Impossible travel against the user's recent sign-ins, kept in a `RiskStore`.

    The counters are plain attributes for metrics to read: `calls` (store round trips
    tried), `failures` (of those, the ones that failed), `degraded` (assessments returned
    degraded) and `skipped` (assessments made without any I/O).
    """

    def __init__(
        self, store: RiskStore, settings: RiskSettings, geo: GeoResolver | None = None
    ) -> None:
        self.store = store
        self.settings = settings
        self.geo = geo if geo is not None else GeoResolver(settings.geoip_db)
        self._configured = parse_cidrs(settings.trusted_ranges)
        self._trusted: tuple[CompiledPolicySet, TrustedRanges] | None = None
        self._on_failure = (
            DEGRADED_CLOSED if settings.failure_mode is FailureMode.CLOSED else DEGRADED_OPEN
        )
        self._record_evaluated = settings.record is RecordPolicy.EVALUATED
        self.calls = 0
        self.failures = 0
        self.degraded = 0
        self.skipped = 0

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """The context with its geo-IP location filled in (for country named locations)."""
        return self.geo.enrich(ctx)

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """The risk pdp itself sees in this sign-in (never raises)."""
        located = self._located(ctx, compiled)
        if located is None:
            self.skipped += 1
            return NO_RISK
        sign_in = record.of_context(located)
        history = await self._call(located.user_id, sign_in, self._record_evaluated)
        if history is None:
            self.degraded += 1
            return self._on_failure
        detections = judge(history, sign_in, self.settings.travel, place_of(located))
        if not detections:
            return NO_RISK
        return Assessment(sign_in_risk=level_of(detections), detections=detections)

    async def warm_up(self) -> bool:
        """Prepare the store for the first decision; whether it answers (never raises)."""
        return await self.store.warm_up()

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """After an allow decision under `RecordPolicy.ALLOWED`, record the sign-in.

        A no-op under `RecordPolicy.EVALUATED` (`assess` recorded it already) and for
        sign-ins `assess` would not judge. Costs a second round trip; never raises.
        """
        if self._record_evaluated:
            return
        located = self._located(ctx, compiled)
        if located is not None:
            await self._call(located.user_id, record.of_context(located), True)

    def _located(self, ctx: SignInContext, compiled: CompiledPolicySet) -> SignInContext | None:
        """The context with its location, or None when it is not judged nor stored."""
        if not compiled.uses_sign_in_risk and not self.settings.force_record:
            return None
        if ctx.is_workload or not ctx.user_id:
            return None
        if ctx.ip_value is not None and self._is_trusted(ctx.ip_version, ctx.ip_value, compiled):
            return None
        ctx = self.geo.enrich(ctx)
        if ctx.latitude is None or ctx.longitude is None:
            return None
        return ctx

    async def close(self) -> None:
        """Close the store and the geo database."""
        await self.store.close()
        self.geo.close()

    async def _call(self, user: str, sign_in: bytes, save: bool) -> History | None:
        """One round trip; None when the store could not answer."""
        self.calls += 1
        try:
            return await self.store.record_and_fetch(user, sign_in, record=save)
        except (RiskStoreUnavailable, TimeoutError) as exc:
            self.failures += 1
            log.debug("risk_store_unavailable", error=str(exc))
        except Exception:  # an assessor never fails a decision: log the bug, degrade
            self.failures += 1
            log.exception("risk_store_error")
        return None

    def _is_trusted(self, version: int, value: int, compiled: CompiledPolicySet) -> bool:
        """Whether the address is in a trusted range of `compiled` or of the settings.

        The lookup is built once per compiled set (kept with a reference to it, so a new
        set is always noticed, and a reload costs one rebuild).
        """
        cached = self._trusted
        if cached is None or cached[0] is not compiled:
            cached = (compiled, TrustedRanges((*self._configured, *compiled.trusted_networks)))
            self._trusted = cached
        return (version, value) in cached[1]


def place_of(ctx: SignInContext) -> Place:
    """The Place of a located sign-in (for the evidence of a detection)."""
    assert ctx.latitude is not None  # the caller checked both
    assert ctx.longitude is not None
    return Place(
        time=record.clamp_time(ctx.time),
        latitude=ctx.latitude,
        longitude=ctx.longitude,
        accuracy_radius_km=ctx.accuracy_radius_km or 0.0,
        country=ctx.country,
        ip_address=ctx.ip_address,
    )


def check_settings(settings: RiskSettings) -> None:
    """Raise ValueError (one line naming the option) for settings `build_assessor` refuses.

    Parses the URL, the mode, the TLS files and the trusted ranges; connects nothing, so
    `pdp serve` can refuse a bad command line before it starts anything.
    """
    parse_cidrs(settings.trusted_ranges)
    if settings.memory_budget_mb < 1:
        raise ValueError(f"--risk-memory-mb {settings.memory_budget_mb}: must be positive")
    if settings.redis_url:
        RedisStore.from_settings(settings, recent_s=1.0)


def build_assessor(settings: RiskSettings) -> HistoryAssessor:
    """The assessor `settings` describe: Redis when `redis_url` is set, else in-process.

    Connects lazily: call `warm_up` before the first decision. Raises ValueError (one line,
    naming the option) for a bad URL, mode, trusted range or budget: startup errors.
    """
    store: RiskStore
    travel = settings.travel
    window_s = float(travel.history_window_s)
    recent_s = min(travel_window_s(travel), window_s)
    if settings.redis_url:
        store = RedisStore.from_settings(settings, recent_s=recent_s)
    else:
        store = MemoryStore(
            history_size=travel.history_size,
            recent_s=recent_s,
            window_s=window_s,
            budget_bytes=settings.memory_budget_mb * 1024 * 1024,
        )
    return HistoryAssessor(store, settings)
