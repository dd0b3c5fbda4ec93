"""The bodies of `pdp test`, `pdp lint` and `pdp report`: arguments in, output and exit code out.

`pdp.cli` declares the arguments and calls these; each returns the process exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from pdp.policy.diagnostics import PolicySetError
from pdp.tooling import lint_output, sarif
from pdp.tooling.aggregate import Aggregator, window_bound
from pdp.tooling.audit_reader import ReadStats, read_records
from pdp.tooling.findings import Severity
from pdp.tooling.junit import junit_xml
from pdp.tooling.lint import LintOptions, lint_path
from pdp.tooling.posture import posture
from pdp.tooling.render_html import html_page
from pdp.tooling.render_markdown import markdown
from pdp.tooling.runner import SuiteResult, run_path

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def run_test(args: argparse.Namespace) -> int:
    """`pdp test PATH [--junit FILE]`: 0 all passed, 1 a test failed, 2 a suite could not run."""
    root: Path = args.path
    if not root.exists():
        print(f"pdp test: {root}: no such file or folder", file=sys.stderr)
        return EXIT_INVALID
    results = run_path(root)
    if not results:
        print(f"pdp test: {root}: no suite files (*.yaml, *.yml)", file=sys.stderr)
        return EXIT_INVALID
    print_test_results(results, sys.stdout, verbose=args.verbose)
    if args.junit is not None:
        try:
            Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
        except OSError as exc:
            print(f"pdp test: --junit: {exc}", file=sys.stderr)
            return EXIT_INVALID
    if any(r.errors for r in results):
        return EXIT_INVALID
    return EXIT_FAILED if any(r.failed for r in results) else EXIT_OK


def print_test_results(results: list[SuiteResult], out: TextIO, *, verbose: bool = True) -> None:
    """Each suite with its tests (failures with their diffs), then one summary line."""
    seconds = 0.0
    for result in results:
        seconds += result.seconds
        where = f" (policies: {result.policies})" if result.policies else ""
        print(f"{result.file}: {result.name}{where}", file=out)
        for error in result.errors:
            print(f"  {error}", file=out)
        for outcome in result.cases:
            if outcome.passed:
                if verbose:
                    print(f"  ok    {outcome.case.name}", file=out)
                continue
            print(f"  FAIL  {outcome.case.name}  ({result.file}:{outcome.case.line})", file=out)
            for mismatch in outcome.mismatches:
                print(f"        {mismatch.field}:", file=out)
                for line in mismatch.diff():
                    print(f"          {line}", file=out)
    tests = sum(len(r.cases) for r in results)
    failed = sum(r.failed for r in results)
    invalid = sum(bool(r.errors) for r in results)
    suites = f"{len(results)} suite{'s' if len(results) != 1 else ''}"
    line = f"{suites}, {tests} tests: {tests - failed} passed, {failed} failed"
    if invalid:
        line += f", {invalid} suite{'s' if invalid != 1 else ''} could not run"
    print(f"{line} ({seconds:.2f} s)", file=out)


def run_lint(args: argparse.Namespace) -> int:
    """`pdp lint PATH`: 0 clean (below --fail-on), 1 findings at --fail-on, 2 set not loaded."""
    root: Path = args.path
    try:
        report = lint_path(
            root,
            LintOptions(
                emergency_accounts=tuple(args.emergency_account),
                emergency_groups=tuple(args.emergency_group),
            ),
        )
    except PolicySetError as exc:
        print(f"pdp lint: {root}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as exc:
        print(f"pdp lint: {exc}", file=sys.stderr)
        return EXIT_INVALID
    render = {"text": lint_output.text, "json": lint_output.as_json, "sarif": sarif.as_sarif}
    body = render[args.format](report)
    if not _emit(body, args.output, "lint"):
        return EXIT_INVALID
    threshold = None if args.fail_on == "never" else Severity(args.fail_on)
    return EXIT_FAILED if report.fails(threshold) else EXIT_OK


def run_report(args: argparse.Namespace) -> int:
    """`pdp report AUDIT_LOG...`: 0 on success, 2 for a bad window or an unreadable file."""
    now = datetime.now(UTC)
    try:
        since = window_bound(args.since, now) if args.since else ""
        until = window_bound(args.until, now) if args.until else ""
    except ValueError as exc:
        print(f"pdp report: --since/--until: {exc}", file=sys.stderr)
        return EXIT_INVALID
    agg = Aggregator(since=since, until=until)
    stats = ReadStats()
    add = agg.add
    try:
        for record in read_records(args.audit_log, stats):
            add(record)
    except OSError as exc:
        print(f"pdp report: {exc}", file=sys.stderr)
        return EXIT_INVALID
    agg.finish()
    stats.unreadable += agg.parts.unreadable
    report = posture(agg, stats, list(args.audit_log))
    if args.format == "json":
        body = json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    elif args.format == "html":
        body = html_page(report)
    else:
        body = markdown(report)
    return EXIT_OK if _emit(body, args.output, "report") else EXIT_INVALID


def _emit(body: str, output: str | None, command: str) -> bool:
    """Write `body` to `output` (a file) or stdout; False (said on stderr) when it fails."""
    if not output:
        sys.stdout.write(body)
        return True
    try:
        Path(output).write_text(body, encoding="utf-8")
    except OSError as exc:
        print(f"pdp {command}: --output: {exc}", file=sys.stderr)
        return False
    return True
