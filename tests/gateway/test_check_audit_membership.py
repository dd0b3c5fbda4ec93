"""A Check whose token could not list the user's groups is audited as such.

Above 200 groups Entra's token carries an overage pointer instead of `groups`; pdp then
decides with group membership unknown, which keeps group-scoped policies in scope. The
audit record says so (`membershipUnknown`), so an auditor reading a challenge or a denial
sees why those policies applied; a token that lists its groups adds no such field. Real
server, real audit log file.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from envoy_requests import DEV_HOST, OFFICE, engineer_claims, envoy_check, loaded_store, serving

from pdp.gateway.config import GatewayConfig
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver

OVERAGE = {"_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "x"}}}


def test_unknown_membership_is_in_the_record_and_only_then(
    config: GatewayConfig, tmp_path: Path
) -> None:
    """The overage call's record has membershipUnknown ["groups"]; the listed one has none."""
    overage = engineer_claims(**OVERAGE)
    del overage["groups"]
    listed = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims())
    unlisted = envoy_check(host=DEV_HOST, client=OFFICE, claims=overage)
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))

    async def main() -> None:
        async with serving(loaded_store(), config, DecisionObserver(audit)) as stubs:
            for request in (listed, unlisted, listed, unlisted):  # first sight, then repeats
                await stubs.check.Check(request, timeout=10)

    asyncio.run(main())
    audit.close()
    records = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [r.get("membershipUnknown") for r in records] == [None, ["groups"], None, ["groups"]]
    assert all(r["status"] == {"errorCode": 0} for r in records)
