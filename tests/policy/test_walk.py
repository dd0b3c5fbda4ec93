"""The source walker follows links, each folder once: link loops neither hang nor repeat."""

from __future__ import annotations

import json
from pathlib import Path

from graph_documents import mfa_policy

from pdp.policy.diagnostics import Severity
from pdp.policy.source import load_sources, walk

POLICY = mfa_policy()


def test_two_links_to_the_folder_itself_are_walked_once(tmp_path: Path) -> None:
    """`ln -s . a; ln -s . b`: the policy is found once, and the walk ends."""
    (tmp_path / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    (tmp_path / "a").symlink_to(".")
    (tmp_path / "b").symlink_to(".")
    files, diagnostics = walk(tmp_path)
    assert [f.rel for f in files] == ["policy.json"]
    assert diagnostics == []


def test_a_link_to_an_ancestor_deep_inside_is_not_followed_again(tmp_path: Path) -> None:
    """A link from a subfolder back to the root adds nothing."""
    sub = tmp_path / "teams" / "ml"
    sub.mkdir(parents=True)
    (sub / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    (sub / "up").symlink_to(tmp_path)
    (sub / "loop").symlink_to("../..")
    files, _ = walk(tmp_path)
    assert [f.rel for f in files] == ["teams/ml/policy.json"]


def test_a_linked_folder_outside_the_root_is_read_once(tmp_path: Path) -> None:
    """A folder reached through a link is read, under the link's name, once."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    root = tmp_path / "root"
    root.mkdir()
    (root / "shared").symlink_to(shared)
    (root / "again").symlink_to(shared)
    files, _ = walk(root)
    assert [f.rel for f in files] == ["again/policy.json"]


def test_a_configmap_volume_is_read_through_its_visible_links(tmp_path: Path) -> None:
    """Kubernetes publishes files as links through ..data: each is read once, by its name."""
    data = tmp_path / "..2026_05_01_12_00_00.000000001"
    data.mkdir()
    (data / "policy.json").write_text(json.dumps(POLICY), encoding="utf-8")
    (tmp_path / "..data").symlink_to(data.name)
    (tmp_path / "policy.json").symlink_to("..data/policy.json")
    loaded = load_sources(tmp_path)
    assert loaded.files == ["policy.json"]
    assert len(loaded.documents) == 1


def test_a_link_loop_named_like_a_policy_file_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """a.json -> b.json -> a.json cannot be read: one error naming it."""
    (tmp_path / "a.json").symlink_to("b.json")
    (tmp_path / "b.json").symlink_to("a.json")
    loaded = load_sources(tmp_path)
    assert {(d.severity, d.file) for d in loaded.diagnostics} == {
        (Severity.ERROR, "a.json"),
        (Severity.ERROR, "b.json"),
    }
    assert all("cannot read file" in d.message for d in loaded.diagnostics)
