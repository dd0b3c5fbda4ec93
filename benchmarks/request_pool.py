"""A varied pool of distinct sign-ins against the ai-workspace example, generated from a seed.

    python benchmarks/request_pool.py [--count 1200] [--seed 1] [--out pool.json]

The 12 requests of deploy/ghz/requests.json repeat; a load test driven only by them would
flatter any cache keyed on request content. The pool mixes what the example's policies
look at and what they do not: users (ML engineers, read-only analysts, the excluded
group, guests, users in other groups) and the training pipeline's and other service
principals; the dev and prod workspaces, the model endpoint, Exchange and other apps;
IPv4 and IPv6 addresses inside and outside the corporate, VPN and pipeline-runner ranges;
no device, or a device of any platform, compliant or not, of any join type; every client
app type; authentication methods from password only to phishing-resistant, sometimes a
last sign-in old enough for a sign-in frequency to lapse; sign-in risk from unset to
high, sometimes user risk. Every request differs from every other in more than its id.
The same seed gives the same pool on every machine (`random.Random(seed)`, no clock).

With `--out` it writes the pool as a JSON array of EvaluateRequests (proto3 JSON, the
format of ghz's --data-file); benchmarks/load.py builds the same pool in memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

START = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
ML_ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
ANALYSTS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e02"
EXCLUDED_GROUP = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e03"  # excluded by every user policy
OTHER_GROUPS = [f"6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d{n:04x}" for n in range(0x100, 0x130)]
PIPELINE = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
OTHER_SERVICE_PRINCIPALS = [
    f"5c7d9e1f-0a2b-4c3d-8e9f-0000000c{n:04x}" for n in range(0x1002, 0x1010)
]
DEV, PROD, ENDPOINT = (f"8a4f0c1e-2d3b-4c5a-9e7f-00000000{s}" for s in ("de01", "f001", "f002"))
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
OTHER_APPS = [f"8a4f0c1e-2d3b-4c5a-9e7f-0000000a{n:04x}" for n in range(16)]
ROLES = ["62e90394-69f5-4237-9190-012177145e10", "f28a1f50-f6e7-4571-818b-6a12f2af6b6c"]
# Documentation and benchmarking ranges only: inside and outside the example's named
# locations (corporate 203.0.113.0/24 and 2001:db8:100::/48, VPN 198.51.100.0/25,
# pipeline runners 192.0.2.0/26).
NETWORKS = [
    ("203.0.113.0/24", 4),
    ("2001:db8:100::/48", 2),
    ("198.51.100.0/25", 2),
    ("198.51.100.128/25", 2),
    ("192.0.2.0/26", 2),
    ("192.0.2.64/26", 1),
    ("198.18.0.0/15", 3),
    ("2001:db8:9999::/48", 2),
    ("2001:db8:200::/40", 2),
]
PLATFORMS = ["PLATFORM_WINDOWS", "PLATFORM_MACOS", "PLATFORM_LINUX", "PLATFORM_IOS"]
PLATFORMS += ["PLATFORM_ANDROID", "PLATFORM_UNSPECIFIED"]
TRUST_TYPES = ["TRUST_TYPE_AZURE_AD", "TRUST_TYPE_SERVER_AD", "TRUST_TYPE_WORKPLACE"]
TRUST_TYPES += ["TRUST_TYPE_UNSPECIFIED"]
CLIENT_APP_TYPES = [
    ("CLIENT_APP_TYPE_BROWSER", 12),
    ("CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS", 5),
    ("CLIENT_APP_TYPE_EXCHANGE_ACTIVE_SYNC", 1),
    ("CLIENT_APP_TYPE_OTHER", 1),
    ("CLIENT_APP_TYPE_UNSPECIFIED", 1),
]
METHODS = [
    ([], 1),
    (["password"], 6),
    (["password", "microsoftAuthenticatorPush"], 4),
    (["password", "fido2"], 2),
    (["fido2"], 1),
    (["password", "sms"], 2),
    (["windowsHelloForBusiness"], 1),
    (["password", "softwareOath"], 1),
    (["federatedSingleFactor"], 1),
]
RISK_LEVELS = [
    (None, 11),
    ("RISK_LEVEL_NONE", 2),
    ("RISK_LEVEL_LOW", 3),
    ("RISK_LEVEL_MEDIUM", 3),
    ("RISK_LEVEL_HIGH", 1),
]


def _pick(rng: random.Random, weighted: Sequence[tuple[Any, int]]) -> Any:
    return rng.choices([value for value, _ in weighted], [weight for _, weight in weighted])[0]


def _address(rng: random.Random) -> str:
    network = ipaddress.ip_network(_pick(rng, NETWORKS))
    offset = rng.randrange(1, min(network.num_addresses - 1, 1 << 32))
    return str(network.network_address + offset)


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _subject(rng: random.Random, index: int) -> tuple[dict[str, Any], bool]:
    """A user (with groups, maybe roles or guest) or a service principal; True for a user."""
    if rng.random() < 0.15:
        sp = PIPELINE if rng.random() < 0.6 else rng.choice(OTHER_SERVICE_PRINCIPALS)
        return {"servicePrincipalId": sp}, False
    groups = [
        group
        for group, share in ((ML_ENGINEERS, 0.45), (ANALYSTS, 0.3), (EXCLUDED_GROUP, 0.04))
        if rng.random() < share
    ]
    groups += rng.sample(OTHER_GROUPS, rng.randrange(0, 3))
    subject: dict[str, Any] = {"userId": f"user-{index:05d}@contoso.example"}
    if groups:
        subject["groupIds"] = groups
    if rng.random() < 0.05:
        subject["roleIds"] = [rng.choice(ROLES)]
    if rng.random() < 0.05:
        subject["guest"] = True
    return subject, True


def _device(rng: random.Random, index: int) -> dict[str, Any] | None:
    if rng.random() < 0.15:
        return None
    device: dict[str, Any] = {"deviceId": f"device-{index:05d}", "platform": rng.choice(PLATFORMS)}
    if rng.random() < 0.7:
        device["compliant"] = True
    device["trustType"] = rng.choice(TRUST_TYPES)
    return {key: value for key, value in device.items() if not key.endswith("UNSPECIFIED")}


def make_request(rng: random.Random, index: int) -> dict[str, Any]:
    """One sign-in as proto3 JSON (an EvaluateRequest), drawn from `rng`."""
    now = START + dt.timedelta(seconds=37 * index)
    subject, is_user = _subject(rng, index)
    app = _pick(
        rng, [(DEV, 5), (PROD, 4), (ENDPOINT, 2), (EXCHANGE, 1), (rng.choice(OTHER_APPS), 2)]
    )
    request: dict[str, Any] = {
        "requestId": f"pool-{index}",
        "time": _stamp(now),
        "subject": subject,
        "target": {"applicationId": app},
        "network": {"ipAddress": _address(rng)},
    }
    if is_user and (device := _device(rng, index)):
        request["device"] = device
    client_app = _pick(rng, CLIENT_APP_TYPES)
    if client_app != "CLIENT_APP_TYPE_UNSPECIFIED":
        request["clientAppType"] = client_app
    if is_user:
        authentication: dict[str, Any] = {"methods": _pick(rng, METHODS)}
        if rng.random() < 0.5:
            ago = dt.timedelta(minutes=rng.randrange(1, 30 * 60))
            authentication["authenticatedAt"] = _stamp(now - ago)
        request["authentication"] = authentication
    risk = {}
    if level := _pick(rng, RISK_LEVELS):
        risk["signIn"] = level
    if rng.random() < 0.1:
        risk["user"] = _pick(rng, RISK_LEVELS[1:])
    if risk:
        request["risk"] = risk
    return request


def make_pool(count: int, seed: int) -> list[dict[str, Any]]:
    """`count` requests from `seed`, each different from all others apart from its id."""
    rng, pool, seen = random.Random(seed), [], set()
    while len(pool) < count:
        request = make_request(rng, len(pool))
        content = json.dumps({**request, "requestId": ""}, sort_keys=True)
        if content not in seen:  # never in practice: every user and device id is new
            seen.add(content)
            pool.append(request)
    return pool


def main(argv: Sequence[str] | None = None) -> int:
    """Write the pool as a JSON array, or print how it is made up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1200, help="requests (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the pool here (JSON array)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    pool = make_pool(args.count, args.seed)
    text = json.dumps(pool, indent=1) + "\n"
    if args.out is None:
        print(text, end="")
    else:
        args.out.write_text(text, "utf-8")
        print(f"{len(pool)} requests (seed {args.seed}) written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
