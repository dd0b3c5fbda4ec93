"""`pdp lint`: load a policy set, run the lockout, baseline and hygiene checks, sort findings.

Every check evaluates sign-ins with the engine (`pdp.engine.evaluate`) on the set compiled
as `pdp serve` would compile it; see `lockout`, `baseline` and `hygiene` for what each
decides and the public guidance behind it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pdp.policy.compile import compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.tooling import baseline, hygiene, lockout
from pdp.tooling.findings import LintReport, Rule
from pdp.tooling.lint_context import LintContext, emergency_principals, policy_refs
from pdp.tooling.sign_in_space import SignInSpace

RULES: tuple[Rule, ...] = (*lockout.RULES, *baseline.RULES, *hygiene.RULES)


@dataclass(frozen=True, slots=True)
class LintOptions:
    """What the user tells lint about their tenant."""

    emergency_accounts: Sequence[str] = ()
    emergency_groups: Sequence[str] = ()


def lint_path(root: Path, options: LintOptions = LintOptions()) -> LintReport:
    """Lint the policy set at `root`; raises PolicySetError when it does not load."""
    started = time.perf_counter()
    policy_set, _ = load_policy_set(root)
    compiled = compile_policy_set(policy_set)
    emergency, said = emergency_principals(
        policy_set, options.emergency_accounts, options.emergency_groups
    )
    lint = LintContext(
        root=root,
        policy_set=policy_set,
        compiled=compiled,
        space=SignInSpace.of(policy_set, compiled),
        emergency=emergency,
        emergency_note=said,
        refs=policy_refs(root, policy_set),
    )
    report = LintReport(
        path=root.as_posix(),
        policies=len(policy_set.policies),
        emergency_access=said,
        rules=list(RULES),
    )
    report.findings += lockout.check(lint)
    baseline_findings, report.baseline = baseline.check(lint)
    report.findings += baseline_findings
    report.findings += hygiene.check(lint)
    order = {rule.id: i for i, rule in enumerate(RULES)}
    report.findings.sort(key=lambda f: (-f.level.rank, order[f.rule.id]))
    report.sign_ins = lint.evaluations
    report.seconds = time.perf_counter() - started
    return report
