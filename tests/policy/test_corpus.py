"""Every real Conditional Access export in tests/corpus loads, compiles and evaluates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pdp.context import SignInContext
from pdp.engine.decision import Result
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import compile_policy_set
from pdp.policy.diagnostics import Severity
from pdp.policy.load import load_policy_set

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "ca-policies"
FILES = sorted(p for p in CORPUS.rglob("*.json"))


def test_corpus_is_present() -> None:
    """The corpus is where the tests look for it: a missing corpus fails, it never skips."""
    assert CORPUS.is_dir(), f"corpus not found at {CORPUS}"
    assert len(FILES) == 98


def test_whole_corpus_loads_without_errors() -> None:
    """All 95 policies and 3 named locations load as one set, with warnings only."""
    policy_set, diagnostics = load_policy_set(CORPUS)
    assert [d for d in diagnostics if d.severity is Severity.ERROR] == []
    assert len(policy_set.policies) == 95
    assert len(policy_set.locations) == 3


@pytest.mark.parametrize("path", FILES, ids=[p.relative_to(CORPUS).as_posix() for p in FILES])
def test_each_corpus_file_loads_on_its_own(path: Path) -> None:
    """Each export loads alone too (references to other files become warnings)."""
    policy_set, _ = load_policy_set(path)
    assert len(policy_set.policies) + len(policy_set.locations) == 1


BASE = SignInContext(
    request_id="corpus",
    time=1_780_000_000.0,
    user_id="0f1e2d3c-0000-4000-8000-000000000001",
    group_ids=frozenset({"ceeac9b8-ddf5-48cb-afcb-e2ab8bfd1a57"}),
    application_id="00000003-0000-0ff1-ce00-000000000000",
    platform="windows",
    client_app_type="browser",
    methods=frozenset({"password"}),
    country="NL",
    explain=True,
)
REQUESTS = {
    "member_password_only": BASE,
    "member_with_fido2_compliant": dataclasses.replace(
        BASE,
        methods=frozenset({"fido2"}),
        compliant=True,
        trust_type="AzureAD",
        device_id="dev-1",
        device_properties={"deviceid": "dev-1", "iscompliant": "True", "trusttype": "AzureAD"},
    ),
    "guest_from_unknown_country": dataclasses.replace(BASE, guest=True, country=""),
    "risky_legacy_client": dataclasses.replace(
        BASE, client_app_type="exchangeActiveSync", sign_in_risk="high", user_risk="high"
    ),
    "service_principal": SignInContext(
        request_id="sp", time=1_780_000_000.0, service_principal_id="sp-1", explain=True
    ),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_corpus_evaluates_and_reports_every_policy(name: str) -> None:
    """With explain, every corpus policy gets a result, and non-applied ones say why."""
    policy_set, _ = load_policy_set(CORPUS)
    decision = evaluate(REQUESTS[name], compile_policy_set(policy_set))
    assert len(decision.policies) == len(policy_set.policies)
    for outcome in decision.policies:
        not_applied = outcome.result in (Result.NOT_APPLIED, Result.REPORT_ONLY_NOT_APPLIED)
        assert bool(outcome.reasons) == not_applied, outcome


def test_corpus_member_without_mfa_is_challenged_or_denied() -> None:
    """A baseline member signing in with a password alone is not simply let in."""
    policy_set, _ = load_policy_set(CORPUS)
    decision = evaluate(REQUESTS["member_password_only"], compile_policy_set(policy_set))
    assert decision.verdict != "allow"
    assert any("mfa" in r.any_of for r in decision.requirements)
