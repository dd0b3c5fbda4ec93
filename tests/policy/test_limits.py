"""What one policy file and one policy set may cost: each limit refuses in time, with a message."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from graph_documents import mfa_policy

from pdp.policy import decode, source
from pdp.policy.diagnostics import Severity
from pdp.policy.source import load_sources

POLICY = mfa_policy()


def _errors(root: Path) -> list[str]:
    loaded = load_sources(root)
    return [d.message for d in loaded.diagnostics if d.severity is Severity.ERROR]


def _alias_bomb(levels: int) -> str:
    """A YAML document whose @odata.type expands to 9**levels strings through aliases."""
    lol = ",".join(['"lol"'] * 9)
    lines = ["'@odata.type': &t", f"  a0: &a0 [{lol}]"]
    lines += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join([*lines, "displayName: bomb", ""])


def test_a_yaml_alias_bomb_is_refused_by_its_expanded_size(tmp_path: Path) -> None:
    """Nested aliases that would expand to millions of values are one error, not a load."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(9), encoding="utf-8")
    [message] = _errors(bomb)
    assert "YAML aliases expand this document by more than 1,000,000" in message
    assert "line " in message


def test_yaml_anchors_used_for_reuse_still_load(tmp_path: Path) -> None:
    """A few aliases (a shared exclusion list) are fine: only expansion past the limit fails."""
    text = """\
- &policy
  id: 7a3c0000-0000-4000-8000-000000000001
  displayName: MFA
  state: enabled
  conditions:
    users: {includeUsers: [All], excludeGroups: &breakglass [6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01]}
    applications: {includeApplications: [All]}
    clientAppTypes: [all]
  grantControls: {operator: OR, builtInControls: [mfa]}
- <<: *policy
  id: 7a3c0000-0000-4000-8000-000000000002
  conditions:
    users: {includeUsers: [All], excludeGroups: *breakglass}
    applications: {includeApplications: [All]}
    clientAppTypes: [browser]
"""
    path = tmp_path / "reuse.yaml"
    path.write_text(text, encoding="utf-8")
    loaded = load_sources(path)
    assert [d for d in loaded.diagnostics if d.severity is Severity.ERROR] == []
    assert len(loaded.documents) == 2


def test_an_alias_to_its_own_ancestor_is_refused(tmp_path: Path) -> None:
    """A recursive alias would make a value contain itself: refused instead of looping."""
    path = tmp_path / "loop.yaml"
    path.write_text("displayName: &a [x, *a]\nstate: enabled\n", encoding="utf-8")
    [message] = _errors(path)
    assert "refers to its own ancestor" in message


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path, suffix: str) -> None:
    """MAX_DEPTH levels load; one more is an error, in JSON and in YAML alike."""
    ok, deep = tmp_path / f"ok{suffix}", tmp_path / f"deep{suffix}"
    # The document itself is one level; its displayName holds the nested lists.
    ok.write_text(json.dumps({"displayName": nested(decode.MAX_DEPTH - 1)}), encoding="utf-8")
    deep.write_text(json.dumps({"displayName": nested(decode.MAX_DEPTH)}), encoding="utf-8")
    assert not any("nested deeper" in m for m in _errors(ok))
    [message] = _errors(deep)
    assert f"nested deeper than {decode.MAX_DEPTH} levels" in message


def nested(levels: int) -> object:
    """A list nested `levels` deep."""
    value: object = []
    for _ in range(levels - 1):
        value = [value]
    return value


def test_nesting_reached_through_aliases_counts_too(tmp_path: Path) -> None:
    """An alias placing a deep value deeper still is measured as expanded."""
    half = decode.MAX_DEPTH // 2 + 1
    inner = "[" * half + "]" * half
    text = f"displayName: &deep {inner}\ndescription: {'[' * half}*deep{']' * half}\n"
    path = tmp_path / "deep.yaml"
    path.write_text(text, encoding="utf-8")
    [message] = _errors(path)
    assert "nested deeper than" in message


def test_very_deep_json_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Nesting past Python's own recursion limit is the same one-line error."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    [message] = _errors(path)
    assert "nested deeper than" in message


def test_too_many_yaml_documents_in_one_file_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most MAX_DOCUMENTS documents per YAML file (made small here: the check, not YAML)."""
    monkeypatch.setattr(decode, "MAX_DOCUMENTS", 50)
    path = tmp_path / "many.yaml"
    path.write_text("---\n{displayName: x}\n" * 51, encoding="utf-8")
    [message] = _errors(path)
    assert "more than 50 documents" in message


def test_too_many_documents_in_one_array_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most MAX_DOCUMENTS documents per file in a top-level array too."""
    monkeypatch.setattr(source, "MAX_DOCUMENTS", 50)
    path = tmp_path / "many.json"
    path.write_text(json.dumps([{}] * 51), encoding="utf-8")
    [message] = _errors(path)
    assert "more than 50 documents" in message


def test_a_file_of_many_thousand_documents_is_within_the_limit(tmp_path: Path) -> None:
    """12,000 policies in one file (far above Entra's 195) are not refused for their number."""
    policies = [{**POLICY, "id": f"7a3c0000-0000-4000-8000-{i:012d}"} for i in range(12_000)]
    path = tmp_path / "many.json"
    path.write_text(json.dumps(policies), encoding="utf-8")
    loaded = load_sources(path)
    assert loaded.diagnostics == []
    assert len(loaded.documents) == 12_000


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1: one\n", "a key must be text"),
        ("displayName: !!binary aGVsbG8=\n", "binary has no JSON equivalent"),
        ("displayName: !!set {a, b}\n", "set has no JSON equivalent"),
        ("displayName: !!omap [{a: 1}]\n", "omap has no JSON equivalent"),
        ("<<: {1: x}\ndisplayName: y\n", "a key must be text"),
    ],
)
def test_yaml_beyond_json_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    """YAML that has no JSON equivalent (non-text keys, binary, sets) is an error."""
    path = tmp_path / "odd.yaml"
    path.write_text(text, encoding="utf-8")
    [message] = _errors(path)
    assert problem in message


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file larger than MAX_FILE_BYTES is an error naming it; the others still load."""
    monkeypatch.setattr(source, "MAX_FILE_BYTES", 1000)
    (tmp_path / "big.json").write_text(json.dumps([POLICY] * 10), encoding="utf-8")
    (tmp_path / "small.json").write_text(json.dumps(POLICY), encoding="utf-8")
    loaded = load_sources(tmp_path)
    [error] = [d for d in loaded.diagnostics if d.severity is Severity.ERROR]
    assert error.file == "big.json"
    assert "larger than 1,000 bytes" in error.message
    assert len(loaded.documents) == 1


def test_a_set_over_the_total_size_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files adding up to more than MAX_SET_BYTES are an error, even if each is small."""
    text = json.dumps(POLICY)
    monkeypatch.setattr(source, "MAX_SET_BYTES", len(text) * 2)
    for i in range(3):
        (tmp_path / f"p{i}.json").write_text(text, encoding="utf-8")
    assert any("exceed" in m for m in _errors(tmp_path))


def test_more_files_than_the_limit_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At most MAX_FILES policy files under a root."""
    monkeypatch.setattr(source, "MAX_FILES", 3)
    for i in range(4):
        (tmp_path / f"p{i}.json").write_text("{}", encoding="utf-8")
    assert any("more than 3 policy files" in m for m in _errors(tmp_path))


def test_a_fifo_named_like_a_policy_file_is_skipped_not_read(tmp_path: Path) -> None:
    """Reading a FIFO would block forever: it is skipped with a warning."""
    os.mkfifo(tmp_path / "pipe.json")
    (tmp_path / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    loaded = load_sources(tmp_path)
    assert [(d.severity, d.file) for d in loaded.diagnostics] == [(Severity.WARNING, "pipe.json")]
    assert loaded.files == ["policy.json"]


def test_huge_values_are_quoted_in_bounded_messages(tmp_path: Path) -> None:
    """A megabyte-long @odata.type is named in a short message, not copied into it."""
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"@odata.type": "x" * 1_000_000}), encoding="utf-8")
    [message] = _errors(path)
    assert "1,000,000 characters" in message
    assert len(message) < 500
