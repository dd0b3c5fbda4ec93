"""What `pdp lint` and `pdp report` cost: lint times per policy set, report records per second.

Run from the repository root:

    python benchmarks/bench_tooling.py [--records 1000000] [--rounds 3]
    python benchmarks/bench_tooling.py --write-log sample.jsonl --records 20000   # a sample log

**lint**: `lint_path` on `examples/ai-workspace`, on each real set of `tests/corpus/ca-policies`
and on the 195-policy synthetic set of `synthetic.py` (seed 1, written as Graph JSON and read
back), each in a fresh process (`python -m pdp lint`, wall time, peak RSS from the child's
rusage), with the sign-ins evaluated and the findings.

**report**: a synthetic audit log in pdp's audit line format (README, "Audit log"), seeded:
users signing in to the example's applications, the example's policies with their real
ids, names and plausible results (AI10 report-only failures for legacy clients), challenges,
denies, 1 % failed calls, 0.5 % degraded decisions, travel detections between country
pairs. Lines are 700 to 1,600 bytes, like the README's example line. `pdp report` runs in a
fresh process over the log (`--format json` to /dev/null), in interleaved rounds with a
log of a quarter of the size, so that records per second and peak RSS of both sizes come
from the same conditions: equal peak RSS for 4x the records is the constant-memory check.
Rates are given per wall second, per CPU second (user + system of the process, steadier on
a shared machine) and per CPU second past start-up (the difference between the two logs
cancels interpreter start-up and imports). Goal: at least 200,000 records per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import synthetic

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ai-workspace"
CORPUS = ROOT / "tests" / "corpus" / "ca-policies"
GOAL = 200_000

APPS = {
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01": 0.45,  # dev workspace
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000f001": 0.25,  # prod workspace
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000f002": 0.15,  # prod model endpoint
    "00000002-0000-0ff1-ce00-000000000000": 0.15,  # Exchange Online (legacy clients)
}
POLICY = {
    n: (f"a1000000-0000-4000-8000-0000000000{n:02d}", name)
    for n, name in {
        1: "AI01 ML Engineers: MFA on dev and prod workspaces",
        3: "AI03 Workspaces: compliant device required",
        4: "AI04 Production: only from corporate and VPN ranges",
        5: "AI05 Dev workspace: MFA outside trusted locations",
        6: "AI06 Production: sign-in every 4 hours, no persistent browser",
        7: "AI07 Dev workspace: sign-in every 24 hours, persistent browser",
        8: "AI08 All resources: block high sign-in risk",
        10: "AI10 Legacy clients: block (report-only while we measure)",
        11: "AI11 All resources: MFA at medium sign-in risk",
    }.items()
}
PAIRS = [("FR", "US"), ("DE", "SG"), ("GB", "IN"), ("FR", "DE"), ("NL", "GB")]


def _applied(n: int, result: str, grant: list[str], session: list[str]) -> dict[str, Any]:
    policy_id, name = POLICY[n]
    return {
        "id": policy_id,
        "displayName": name,
        "result": result,
        "enforcedGrantControls": grant,
        "enforcedSessionControls": session,
    }


def audit_record(rng: random.Random, when: float, index: int) -> dict[str, Any]:
    """One synthetic audit record in pdp's audit line format."""
    app = rng.choices(list(APPS), weights=list(APPS.values()))[0]
    user = f"user{rng.randrange(5000):04d}@contoso.example"
    legacy = app.startswith("00000002")
    record: dict[str, Any] = {
        "createdDateTime": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(when))
        + f".{int(when * 1000) % 1000:03d}Z",
        "id": f"req-{index}",
        "userId": user,
        "servicePrincipalId": "",
        "appId": app,
        "ipAddress": f"203.0.113.{rng.randrange(256)}",
        "location": {},
        "deviceDetail": {
            "deviceId": f"laptop-{rng.randrange(9000)}",
            "operatingSystem": rng.choice(["macOS", "Windows", "Linux"]),
            "isCompliant": rng.random() < 0.8,
            "trustType": "Azure AD joined",
        },
        "clientAppUsed": "Exchange ActiveSync" if legacy else "Browser",
    }
    if rng.random() < 0.01:
        record["status"] = {"errorCode": 3, "failureReason": "invalid_argument"}
        record["conditionalAccessStatus"] = "notApplied"
        record["decision"] = ""
        record["latencyMs"] = 0.05
        return record
    policies: list[dict[str, Any]] = []
    decision = "allow"
    detections: list[dict[str, Any]] = []
    if legacy:
        policies.append(_applied(10, "reportOnlyFailure", ["block"], []))
    else:
        mfa = rng.random() < 0.7
        policies.append(_applied(3, "success", ["compliantDevice"], []))
        if app.endswith("de01"):
            policies.append(_applied(1, "success" if mfa else "failure", ["mfa"], []))
            policies.append(_applied(7, "success", [], ["signInFrequency", "persistentBrowser"]))
            if not mfa:
                policies.append(_applied(5, "failure", ["mfa"], []))
                decision = "challenge"
        else:
            policies.append(_applied(6, "success", [], ["signInFrequency", "persistentBrowser"]))
            if rng.random() < 0.1:
                policies.append(_applied(4, "failure", ["block"], []))
                decision = "deny"
        if rng.random() < 0.004:
            before, after = rng.choice(PAIRS)
            kind = "impossibleTravel" if rng.random() < 0.6 else "unlikelyTravel"
            detections.append(
                {
                    "riskEventType": kind,
                    "riskLevel": "high" if kind == "impossibleTravel" else "medium",
                    "distanceKm": 5807.2,
                    "speedKmh": 5807.2,
                    "previous": {"time": record["createdDateTime"], "countryOrRegion": before},
                    "current": {"time": record["createdDateTime"], "countryOrRegion": after},
                }
            )
            if kind == "impossibleTravel":
                policies.append(_applied(8, "failure", ["block"], []))
                decision = "deny"
            else:
                policies.append(_applied(11, "failure", ["mfa"], []))
                decision = "challenge" if decision == "allow" else decision
    record["status"] = {"errorCode": 0}
    record["conditionalAccessStatus"] = (
        "failure" if any(p["result"] == "failure" for p in policies) else "success"
    )
    record["decision"] = decision
    record["requirements"] = (
        [{"anyOf": ["mfa"], "policyIds": [POLICY[1][0]]}] if decision == "challenge" else []
    )
    record["riskDetections"] = detections
    record["riskLevelDuringSignIn"] = "high" if detections else "none"
    record["riskDegraded"] = rng.random() < 0.005
    record["appliedConditionalAccessPolicies"] = policies
    record["policyVersion"] = "eadbf3e091935d20"
    record["latencyMs"] = round(rng.uniform(0.2, 1.5), 3)
    return record


def write_log(path: Path, records: int, seed: int = 1) -> int:
    """Write `records` lines over 7 days from 2026-11-16; returns the bytes written."""
    rng = random.Random(seed)
    start = 1_794_787_200.0  # 2026-11-16T00:00:00Z
    step = 7 * 86400 / records
    with path.open("w", encoding="utf-8") as out:
        for i in range(records):
            line = json.dumps(audit_record(rng, start + i * step, i), separators=(",", ":"))
            out.write(line + "\n")
    return path.stat().st_size


def measured(args: list[str]) -> tuple[float, float, int]:
    """Run `python -m pdp ARGS` in a fresh process: (wall s, CPU s, peak RSS KiB).

    CPU time (user + system, from /usr/bin/time) is steadier than wall time on a shared
    machine; both include interpreter start-up and imports.
    """
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", sys.executable, "-m", "pdp", *args],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: lint found something, which is fine here
        raise SystemExit(f"pdp {' '.join(args)} failed:\n{done.stderr}")
    rss, user, system = done.stderr.strip().splitlines()[-1].split()
    return elapsed, float(user) + float(system), int(rss)


def bench_lint(folder: Path, *, quick: bool = False) -> None:
    """The lint table (`quick`: the example set only)."""
    sets = [("examples/ai-workspace", EXAMPLE)]
    if not quick:
        sets += [(f"corpus {p.name}", p) for p in sorted(CORPUS.iterdir()) if p.is_dir()]
        synthetic_root = folder / "synthetic-195"
        synthetic_root.mkdir()
        synthetic.write_policy_set(synthetic_root, synthetic.make_universe(1), 195, 1)
        sets.append(("synthetic 195 (seed 1)", synthetic_root))
    print(
        "| policy set | policies | sign-ins evaluated | findings | wall s | CPU s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, root in sets:
        elapsed, cpu, rss = measured(
            [
                "lint",
                str(root),
                "--fail-on",
                "never",
                "--format",
                "json",
                "--output",
                str(folder / "lint.json"),
            ]
        )
        report = json.loads((folder / "lint.json").read_text(encoding="utf-8"))
        print(
            f"| {name} | {report['policies']} | {report['signInsEvaluated']:,} "
            f"| {len(report['findings'])} | {elapsed:.2f} | {cpu:.2f} | {rss / 1024:.0f} |"
        )


def bench_report(folder: Path, records: int, rounds: int) -> None:
    """The report table: records per second and peak RSS, full log and a quarter of it."""
    logs = {}
    for label, n in (("full", records), ("quarter", records // 4)):
        path = folder / f"audit-{label}.jsonl"
        size = write_log(path, n)
        logs[label] = (path, n, size)
    figures: dict[str, list[tuple[float, float, int]]] = {"full": [], "quarter": []}
    for _ in range(rounds):
        for label in ("quarter", "full"):  # interleaved
            path = logs[label][0]
            figures[label].append(
                measured(["report", str(path), "--format", "json", "--output", os.devnull])
            )
    print(
        "| log | records | MB | wall s (best) | CPU s (best) | records/s of wall "
        "| records/CPU-s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in ("quarter", "full"):
        path, n, size = logs[label]
        wall = min(w for w, _, _ in figures[label])
        cpu = min(c for _, c, _ in figures[label])
        rss = max(r for _, _, r in figures[label])
        print(
            f"| {label} | {n:,} | {size / 1e6:.0f} | {wall:.2f} | {cpu:.2f} | {n / wall:,.0f} "
            f"| {n / cpu:,.0f} | {rss / 1024:.0f} |"
        )
    n = logs["full"][1]
    wall = min(w for w, _, _ in figures["full"])
    cpu = min(c for _, c, _ in figures["full"])
    quarter_n = logs["quarter"][1]
    quarter_cpu = min(c for _, c, _ in figures["quarter"])
    marginal = (n - quarter_n) / max(cpu - quarter_cpu, 1e-9)  # start-up cancels out
    for what, rate in (("wall", n / wall), ("CPU", n / cpu), ("CPU, past start-up", marginal)):
        met = "met" if rate >= GOAL else "NOT met"
        print(f"goal: >= {GOAL:,} records/s ({what}): {rate:,.0f} ({met})")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


def main() -> None:
    """Parse options, print both tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--write-log", type=Path, help="only write a sample audit log here")
    parser.add_argument("--skip-lint", action="store_true")
    parser.add_argument("--quick", action="store_true", help="lint the example set only")
    args = parser.parse_args()
    if args.write_log:
        write_log(args.write_log, args.records)
        return
    load = os.getloadavg()[0]
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_lint:
            bench_lint(folder, quick=args.quick)
            print()
        bench_report(folder, args.records, args.rounds)


if __name__ == "__main__":
    main()
