"""What every lint check shares, and one counted way to evaluate a sign-in.

That is: the set, its sign-in space, where each policy is written, and the
emergency-access principals.

Emergency-access (break-glass) accounts and groups are the ones given on the command line;
without any, pdp takes the user or group excluded from the most policies, as Maester
does, and says so in the report (Microsoft asks for them to be excluded from every
policy:
https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/security-emergency-access).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Result
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.model import Policy, PolicySet, PolicyState
from pdp.policy.source import load_sources
from pdp.tooling.findings import PolicyRef
from pdp.tooling.sign_in_space import (
    GENERIC_APP,
    Candidate,
    Principal,
    SignInSpace,
    device_fields,
)

APPLIED = frozenset({Result.SUCCESS, Result.FAILURE})
REPORT_ONLY_WOULD_ACT = frozenset({Result.REPORT_ONLY_FAILURE, Result.REPORT_ONLY_INTERRUPTED})
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


@dataclass(slots=True)
class LintContext:
    """The policy set under lint and what the checks share."""

    root: Path
    policy_set: PolicySet
    compiled: CompiledPolicySet
    space: SignInSpace
    emergency: list[Principal]
    emergency_note: tuple[str, ...]
    refs: dict[str, PolicyRef] = field(default_factory=dict)
    evaluations: int = 0
    by_id: dict[str, Policy] = field(default_factory=dict)

    def evaluate(self, ctx: SignInContext) -> Decision:
        """Decide `ctx` with the engine, counting it."""
        self.evaluations += 1
        return evaluate(ctx, self.compiled, now=ctx.time)

    def policy(self, policy_id: str) -> Policy:
        """The parsed policy with this id."""
        if not self.by_id:
            self.by_id.update((p.id, p) for p in self.policy_set.policies)
        return self.by_id[policy_id]

    def ref(self, policy_id: str) -> PolicyRef:
        """Where a policy is written."""
        return self.refs[policy_id]

    def refs_of(self, ids: Iterable[str]) -> tuple[PolicyRef, ...]:
        """The refs of `ids`, in set order, each once."""
        wanted = set(ids)
        return tuple(self.refs[p.id] for p in self.policy_set.policies if p.id in wanted)

    def sign_in(
        self,
        principal: Principal,
        picks: Sequence[tuple[str, int]],
        device: Candidate,
        **fields: Any,
    ) -> SignInContext:
        """A sign-in: `principal`, one candidate per named dimension, a device, extra fields."""
        values: dict[str, Any] = {**principal.fields(), **device_fields(device)}
        for dimension, index in picks:
            values.update(self.space.dimensions[dimension][index].fields)
        values.update(fields)
        return self.space.vary(values)

    def generic_target(self) -> list[int]:
        """The index of the target candidate 'an application no policy names'."""
        return self.space.indices("target", lambda f: f.get("application_id") == GENERIC_APP)

    def sweep(
        self,
        *,
        clients: Sequence[str],
        devices: Sequence[Candidate],
        targets: Sequence[int] | None = None,
    ) -> Iterator[tuple[tuple[tuple[str, int], ...], Candidate]]:
        """The sign-ins that decide whether any sign-in gets through (see `SignInSpace`).

        Per dimension only candidates matching a minimal set of enforced policies; every
        combination of them, on each device. `targets` limits the applications (default:
        every application candidate, no user actions or authentication contexts).
        """
        space, enforced = self.space, self.compiled.enforced_mask
        if targets is None:
            targets = space.indices(
                "target", lambda f: "user_action" not in f and "authentication_contexts" not in f
            )
        clients_at = space.indices("clientApps", lambda f: f["client_app_type"] in clients)
        options = [
            [("target", i) for i in space.minimal("target", enforced, targets)],
            [("devicePlatform", i) for i in space.minimal("devicePlatform", enforced)],
            [("clientApps", i) for i in space.minimal("clientApps", enforced, clients_at)],
            [("location", i) for i in space.minimal("location", enforced)],
        ]
        for picks in itertools.product(*options):
            for device in devices:
                yield picks, device

    def controls(self, *, except_prefixes: Sequence[str] = ()) -> frozenset[str]:
        """Every grant control the set names, but those starting with `except_prefixes`."""
        named = {c for requirement, *_ in self.compiled.grants.requirements for c in requirement}
        named.add("passwordChange")
        return frozenset(c for c in named if not c.startswith(tuple(except_prefixes)))

    def describe(
        self, principal: Principal, picks: Sequence[tuple[str, int]], device: Candidate
    ) -> str:
        """A sign-in in words, e.g. 'a member in no group, browser on windows, ...'."""
        parts = [principal.label]
        parts += [self.space.dimensions[d][i].label for d, i in picks]
        parts.append(device.label)
        return ", ".join(parts)


def applied(decision: Decision) -> list[PolicyOutcome]:
    """The enforced policies that applied to a decision."""
    return [p for p in decision.policies if p.result in APPLIED]


def policy_refs(root: Path, policy_set: PolicySet) -> dict[str, PolicyRef]:
    """Each policy's file (relative to `root`) and the line where its id (or name) is."""
    texts: dict[str, list[str]] = {}
    for doc in load_sources(root).documents:
        if doc.file not in texts:
            path = root if root.is_file() else root / doc.file
            try:
                texts[doc.file] = _decoded(path.read_bytes()).splitlines()
            except OSError:
                texts[doc.file] = []
    refs: dict[str, PolicyRef] = {}
    files = sorted(texts, key=len, reverse=True)
    for policy in policy_set.policies:
        file = next((f for f in files if policy.source.startswith(f)), "")
        lines = texts.get(file, [])
        line = _line_of(lines, policy.id) or _line_of(lines, policy.display_name) or 1
        shown = "" if root.is_file() else file
        refs[policy.id] = PolicyRef(policy.id, policy.display_name, policy.state.value, shown, line)
    return refs


def _decoded(raw: bytes) -> str:
    from pdp.policy.decode import decode_text  # noqa: PLC0415 - the loader's own decoding

    return decode_text(raw)


def _line_of(lines: list[str], needle: str) -> int:
    pattern = re.compile(r"[\"'\s:]" + re.escape(needle) + r"[\"'\s,]?", re.IGNORECASE)
    for number, text in enumerate(lines, 1):
        if pattern.search(text):
            return number
    return 0


def emergency_principals(
    policy_set: PolicySet, accounts: Sequence[str], groups: Sequence[str]
) -> tuple[list[Principal], tuple[str, ...]]:
    """The emergency-access principals (holding Global Administrator) and how they were chosen."""
    admin = frozenset({GLOBAL_ADMINISTRATOR})
    if accounts or groups:
        principals = [
            Principal(f"emergency account {a}", user_id=a.lower(), role_ids=admin, excluded=a)
            for a in accounts
        ] + [
            Principal(
                f"a member of emergency group {g}",
                group_ids=frozenset({g.lower()}),
                role_ids=admin,
                excluded=g,
            )
            for g in groups
        ]
        given = [f"account {a} (given)" for a in accounts] + [f"group {g} (given)" for g in groups]
        return principals, tuple(given)
    counts: Counter[tuple[str, str]] = Counter()
    active = [p for p in policy_set.policies if p.state is not PolicyState.DISABLED]
    for policy in active:
        users = policy.conditions.users
        counts.update(("account", u) for u in users.exclude_users if u != "GuestsOrExternalUsers")
        counts.update(("group", g) for g in users.exclude_groups)
    if not counts:
        return [], ("none: no account or group is given, and no policy excludes one",)
    top = max(counts.values())
    chosen = sorted(k for k, n in counts.items() if n == top)
    principals = [
        Principal(f"emergency account {v}", user_id=v, role_ids=admin, excluded=v)
        if kind == "account"
        else Principal(
            f"a member of emergency group {v}", group_ids=frozenset({v}), role_ids=admin, excluded=v
        )
        for kind, v in chosen
    ]
    said = tuple(
        f"{kind} {v} (inferred: excluded from {top} of {len(active)} policies; "
        f"declare it with --emergency-{kind})"
        for kind, v in chosen
    )
    return principals, said
