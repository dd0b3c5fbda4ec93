"""The sign-in space: candidates per distinction, and sweeps that are exact though small."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pdp.engine.decision import Verdict
from pdp.policy.compile import compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.tooling.lint_context import LintContext, emergency_principals, policy_refs
from pdp.tooling.sign_in_space import DEVICES, MODERN_CLIENTS, PASSWORD_ONLY, SignInSpace

ROOT = Path(__file__).resolve().parents[2]
SETS = [
    ROOT / "examples" / "ai-workspace",
    ROOT / "tests" / "corpus" / "ca-policies" / "ConditionalAccessBaseline",
]


def context(root: Path) -> LintContext:
    """The lint context of a policy folder."""
    policy_set, _ = load_policy_set(root)
    compiled = compile_policy_set(policy_set)
    emergency, said = emergency_principals(policy_set, (), ())
    return LintContext(
        root,
        policy_set,
        compiled,
        SignInSpace.of(policy_set, compiled),
        emergency,
        said,
        policy_refs(root, policy_set),
    )


@pytest.mark.parametrize("root", SETS, ids=lambda p: p.name)
def test_minimal_sweep_finds_what_the_full_product_finds(root: Path) -> None:
    """Whether a password-only sign-in gets in is the same over the sweep and every combination."""
    lint = context(root)
    space = lint.space
    apps = space.indices(
        "target", lambda f: "user_action" not in f and "authentication_contexts" not in f
    )
    clients = space.indices("clientApps", lambda f: f["client_app_type"] in MODERN_CLIENTS)
    every = list(
        itertools.product(
            [("target", i) for i in apps],
            [("devicePlatform", i) for i in range(len(space.dimensions["devicePlatform"]))],
            [("clientApps", i) for i in clients],
            [("location", i) for i in range(len(space.dimensions["location"]))],
        )
    )
    swept = list(lint.sweep(clients=MODERN_CLIENTS, devices=DEVICES))
    assert len(swept) < len(every) * len(DEVICES)
    principals = [p for p in space.identities() if not p.service_principal_id][:12]
    for principal in principals:

        def allowed(picks: tuple[tuple[str, int], ...], device: object) -> bool:
            ctx = lint.sign_in(principal, picks, device, methods=PASSWORD_ONLY)  # noqa: B023
            return lint.evaluate(ctx).verdict is Verdict.ALLOW

        full = any(allowed(picks, device) for picks in every for device in DEVICES)
        fast = any(allowed(picks, device) for picks, device in swept)
        assert fast == full, principal.label


def test_candidates_cover_each_distinction_of_the_example() -> None:
    """Every named range, group and application of the example is a candidate."""
    space = context(SETS[0]).space
    locations = [c.label for c in space.dimensions["location"]]
    assert "203.0.113.1 (in Corporate offices)" in locations
    assert "198.51.100.1 (in Corporate VPN egress)" in locations
    assert any("in no named range" in label for label in locations)
    identities = [c.label for c in space.dimensions["identity"]]
    assert "a member of group 6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e02" in identities
    assert "service principal 5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001" in identities
    targets = [c.label for c in space.dimensions["target"]]
    assert "application 8a4f0c1e-2d3b-4c5a-9e7f-00000000f002" in targets
