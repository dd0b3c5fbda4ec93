"""The `pdp` command line: serve the gRPC API, evaluate one request, validate a policy set.

    pdp serve --policies PATH [--listen HOST:PORT] [--workers N] [... see pdp.config]
    pdp evaluate --policies PATH --request FILE|- [--explain] [--time RFC3339]
    pdp validate --policies PATH [--quiet]
    pdp test PATH [--junit FILE]
    pdp lint PATH [--format text|json|sarif] [--fail-on SEVERITY] [--emergency-account ID]
    pdp report AUDIT_LOG... [--format markdown|json|html] [--since T] [--until T]

`serve`'s options (and their PDP_* environment variables) are the table in `pdp.config`;
`PDP_POLICIES` also supplies `--policies` for `evaluate` and `validate`. `evaluate` goes
through the same `Decider` as the server, so its JSON output is what the server would
answer. Exit codes: 0 success (also after a graceful stop), 1 invalid policies (or the
server could not start), 2 a bad command line or request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from pdp import __version__
from pdp.config import HelpFormatter, Settings, add_serve_options, settings_from_args
from pdp.console import run_command
from pdp.decide import Decider
from pdp.errors import InvalidRequest, StartupError
from pdp.observability.logging import configure_logging
from pdp.policy.compile import compile_policy_set
from pdp.policy.diagnostics import Diagnostic, PolicySetError, Severity
from pdp.policy.load import load_policy_set
from pdp.policy.source import DocumentKind, load_sources
from pdp.policy_store import PolicyStore
from pdp.risk.settings import RiskSettings
from pdp.runtime.risk import close_assessor, open_assessor
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.tooling import commands as tooling
from pdp.v1 import pdp_pb2 as pb

EXIT_OK, EXIT_POLICIES, EXIT_USAGE = 0, 1, 2
_LOCATION_KINDS = frozenset(
    {
        DocumentKind.IP_NAMED_LOCATION,
        DocumentKind.COUNTRY_NAMED_LOCATION,
        DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION,
    }
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `pdp` command; returns the exit code (0 too when stdout's reader left early)."""
    return run_command(lambda: _run(argv))


def _run(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except StartupError as exc:  # a setting, file or address that cannot be used: one line
        print(f"pdp {args.name}: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_POLICIES


def one_line(message: str) -> str:
    """`message` on one line: its lines (a YAML error's, say) joined by "; "."""
    return "; ".join(line.strip() for line in message.splitlines() if line.strip())


def _existing(path: Path) -> Path:
    """The --policies path; a StartupError naming the flag when there is nothing there."""
    if not path.exists():
        raise StartupError(f"--policies {path}: no such file or directory")
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pdp", description="Policy decision point for Conditional Access policies."
    )
    parser.add_argument("--version", action="version", version=f"pdp {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    policies_default = os.environ.get("PDP_POLICIES")
    policies_help = "policy file or folder (default: $PDP_POLICIES)"

    def add_policies(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--policies",
            type=Path,
            default=policies_default,
            required=policies_default is None,
            help=policies_help,
        )

    serve_cmd = commands.add_parser(
        "serve",
        help="serve the gRPC decision API",
        description="Serve pdp.v1.PolicyDecisionService, health and reflection over gRPC.",
        formatter_class=HelpFormatter,
    )
    add_serve_options(serve_cmd)
    serve_cmd.set_defaults(name="serve", command=_serve, parser=serve_cmd)

    evaluate_cmd = commands.add_parser(
        "evaluate",
        help="decide requests (proto3 JSON)",
        description="Decide EvaluateRequests in order, through the server's decision path. "
        "Several --request files share one risk history (in-process unless --redis-url), so "
        "a sequence of sign-ins shows pdp's impossible-travel detection.",
    )
    add_policies(evaluate_cmd)
    evaluate_cmd.add_argument(
        "--request",
        required=True,
        action="append",
        help="EvaluateRequest as proto3 JSON: a file, or - for stdin; repeat for a sequence. "
        "One request prints its EvaluateResponse object; several print a JSON array of "
        "responses, in order",
    )
    evaluate_cmd.add_argument(
        "--redis-url", default="", help="risk history in Redis instead of in-process"
    )
    evaluate_cmd.add_argument("--geoip-db", default="", help="MaxMind City or Country database")
    evaluate_cmd.add_argument(
        "--explain", action="store_true", help="also report why each policy did not apply"
    )
    evaluate_cmd.add_argument(
        "--time",
        type=_rfc3339,
        help="the clock (RFC 3339) for a request without a time (default: now)",
    )
    evaluate_cmd.set_defaults(name="evaluate", command=_evaluate)

    validate_cmd = commands.add_parser("validate", help="check a policy set, print diagnostics")
    add_policies(validate_cmd)
    validate_cmd.add_argument("--quiet", action="store_true", help="print errors only")
    validate_cmd.set_defaults(name="validate", command=_validate)
    _add_tooling_commands(commands)
    return parser


def _add_tooling_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`pdp test`, `pdp lint`, `pdp report`: the policy owners' tools (in `pdp.tooling`)."""
    test_cmd = commands.add_parser(
        "test",
        help="run policy test suites (YAML)",
        description="Run the test suites under PATH: named sign-ins and the decision each must "
        "get. Exit 0 when all pass, 1 when a test fails, 2 when a suite cannot run.",
    )
    test_cmd.add_argument("path", type=Path, metavar="PATH", help="a suite file or a folder")
    test_cmd.add_argument("--junit", metavar="FILE", help="also write JUnit XML to FILE")
    test_cmd.add_argument(
        "--quiet", dest="verbose", action="store_false", help="list failed tests only"
    )
    test_cmd.set_defaults(name="test", command=tooling.run_test)

    lint_cmd = commands.add_parser(
        "lint",
        help="check a policy set for lockouts, baseline gaps and hygiene",
        description="Check the policy set at PATH by evaluating synthetic sign-ins with the "
        "engine: lockout safety, CISA SCuBA baseline coverage, hygiene. Exit 1 when a finding "
        "reaches --fail-on, 2 when the set does not load.",
    )
    lint_cmd.add_argument("path", type=Path, metavar="PATH", help="a policy file or folder")
    lint_cmd.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    _add_output(lint_cmd)
    lint_cmd.add_argument(
        "--fail-on",
        choices=("error", "warning", "note", "never"),
        default="error",
        help="exit 1 when a finding is this severe or more (default: error)",
    )
    lint_cmd.add_argument(
        "--emergency-account",
        action="append",
        default=[],
        metavar="ID",
        help="an emergency-access (break-glass) user id as policies name it; repeatable",
    )
    lint_cmd.add_argument(
        "--emergency-group",
        action="append",
        default=[],
        metavar="ID",
        help="a group of emergency-access accounts; repeatable (default: the user or group "
        "excluded from the most policies)",
    )
    lint_cmd.set_defaults(name="lint", command=tooling.run_lint)

    report_cmd = commands.add_parser(
        "report",
        help="posture report from audit logs",
        description="Read audit logs (JSON lines, as --audit-log writes them; .gz or - for "
        "stdin) in one streaming pass and report per-policy results, what report-only "
        "policies would do, friction per application, travel detections and degraded "
        "decisions.",
    )
    report_cmd.add_argument("audit_log", nargs="+", metavar="AUDIT_LOG", help="log files")
    report_cmd.add_argument("--format", choices=("markdown", "json", "html"), default="markdown")
    _add_output(report_cmd)
    report_cmd.add_argument(
        "--since", metavar="TIME", help="from this RFC 3339 time, or this long ago (24h, 7d)"
    )
    report_cmd.add_argument(
        "--until", metavar="TIME", help="before this RFC 3339 time, or this long ago"
    )
    report_cmd.set_defaults(name="report", command=tooling.run_report)


def _add_output(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--output", metavar="FILE", help="write to FILE instead of stdout")


def _rfc3339(value: str) -> float:
    stamp = Timestamp()
    try:
        stamp.FromJsonString(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 time: {value!r} ({exc})") from None
    return stamp.seconds + stamp.nanos / 1e9


def _serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args, os.environ, _setting_error)
    _existing(settings.policies)
    configure_logging(json=settings.log_format == "json")
    # Imported here: `evaluate` and `validate` need neither grpc's server nor its extras.
    from pdp.runtime.app import run_event_loop, serve  # noqa: PLC0415
    from pdp.runtime.workers import supervise  # noqa: PLC0415

    try:
        if settings.workers > 1:
            return supervise(settings)
        run_event_loop(serve(settings, _print_listening(settings)))
    except PolicySetError:  # each diagnostic was logged
        print(
            f"pdp serve: refusing to start: {settings.policies} is not a valid policy set",
            file=sys.stderr,
        )
        return EXIT_POLICIES
    return EXIT_OK


def _setting_error(message: str) -> NoReturn:
    """A flag or PDP_* variable with a value `pdp serve` cannot use: one line, exit 2."""
    print(f"pdp serve: error: {message}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


def _print_listening(settings: Settings) -> Callable[[int], None]:
    host = settings.listen.rpartition(":")[0]

    def ready(port: int) -> None:
        print(f"listening on {host}:{port}", flush=True)

    return ready


def _evaluate(args: argparse.Namespace) -> int:
    configure_logging(json=False)  # stderr: stdout carries only the JSON answer
    requests: list[pb.EvaluateRequest] = []
    for source in args.request:
        request = pb.EvaluateRequest()
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text("utf-8")
            json_format.Parse(text, request)  # unknown fields are errors
        except (OSError, UnicodeDecodeError, json_format.ParseError) as exc:
            print(f"pdp evaluate: {source}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        request.explain = request.explain or args.explain
        requests.append(request)
    store = PolicyStore()
    try:
        store.load(_existing(args.policies))
    except PolicySetError as exc:
        _print_diagnostics(exc.diagnostics, sys.stderr)
        return EXIT_POLICIES
    now = time.time() if args.time is None else args.time
    settings = RiskSettings(redis_url=args.redis_url, geoip_db=args.geoip_db)
    try:
        responses = asyncio.run(_decide_all(store, settings, requests, now))
    except _RequestError as exc:
        print(f"pdp evaluate: {args.request[exc.index]}: {exc.error}", file=sys.stderr)
        return EXIT_USAGE
    texts = [
        json_format.MessageToJson(r, preserving_proto_field_name=False, indent=2) for r in responses
    ]
    print(texts[0] if len(texts) == 1 else "[\n" + ",\n".join(texts) + "\n]")
    return EXIT_OK


class _RequestError(Exception):
    """Which request of a sequence was invalid."""

    def __init__(self, index: int, error: InvalidRequest) -> None:
        self.index, self.error = index, error


async def _decide_all(
    store: PolicyStore, settings: RiskSettings, requests: list[pb.EvaluateRequest], now: float
) -> list[pb.EvaluateResponse]:
    """Decide `requests` in order with one decider and one risk history."""
    assessor = await open_assessor(settings)
    try:
        decider = Decider(store, assessor)
        responses = []
        for index, request in enumerate(requests):
            try:
                ctx = to_context(request, now)
                decision = await decider.decide(ctx)
            except InvalidRequest as exc:
                raise _RequestError(index, exc) from exc
            responses.append(to_response(decision, ctx))
        return responses
    finally:
        await close_assessor(assessor)


def _validate(args: argparse.Namespace) -> int:
    try:
        policy_set, diagnostics = load_policy_set(args.policies)
        compile_policy_set(policy_set)  # what `serve` would do next
    except PolicySetError as exc:
        diagnostics = exc.diagnostics
    errors = sum(d.severity is Severity.ERROR for d in diagnostics)
    warnings = len(diagnostics) - errors
    shown = [d for d in diagnostics if d.severity is Severity.ERROR] if args.quiet else diagnostics
    _print_diagnostics(shown, sys.stdout)
    # Counted from the documents found, so that a refused set is summarised too.
    kinds = [doc.kind for doc in load_sources(args.policies).documents]
    policies = kinds.count(DocumentKind.POLICY)
    locations = sum(kind in _LOCATION_KINDS for kind in kinds)
    print(f"{policies} policies, {locations} named locations, {errors} errors, {warnings} warnings")
    return EXIT_POLICIES if errors else EXIT_OK


def _print_diagnostics(diagnostics: Sequence[Diagnostic], stream: TextIO) -> None:
    for diagnostic in diagnostics:
        print(diagnostic, file=stream)
