"""policyVersion is a hash of the policy set's meaning, not of its files.

The same policies give the same version whatever their file names, folder layout, order,
encoding, JSON or YAML; any change of meaning gives another version.
"""

from __future__ import annotations

import codecs
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from pdp.decide import Decider
from pdp.policy.load import load_policy_set
from pdp.policy.model import Users
from pdp.policy.version import canonical, policy_set_version
from pdp.policy_store import PolicyStore
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ai-workspace"
FLAT_COPY = ROOT / "deploy" / "kubernetes" / "base" / "policies"  # the ConfigMap's layout


def version(root: Path) -> str:
    """The version pdp reports for the policy set under `root`."""
    return load_policy_set(root)[0].version


def objects() -> list[dict[str, Any]]:
    """Every Graph object of the example set (policies and named locations), in file order."""
    out: list[dict[str, Any]] = []
    for path in sorted(EXAMPLE.rglob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        out.extend(data.get("value", [data]))
    return out


def write_each(root: Path, items: list[dict[str, Any]], name: Callable[[int], str]) -> Path:
    """One JSON file per object under `root`, named by `name(index)`."""
    root.mkdir(parents=True)
    for index, item in enumerate(items):
        (root / name(index)).write_text(json.dumps(item, indent=2), "utf-8")
    return root


@pytest.fixture(scope="module")
def reference() -> str:
    """The version of examples/ai-workspace as it is."""
    return version(EXAMPLE)


def test_version_is_sixteen_hex_digits(reference: str) -> None:
    """A version is 16 lower-case hex digits, the same on every load."""
    assert len(reference) == 16
    assert int(reference, 16) >= 0
    assert reference == reference.lower() == version(EXAMPLE)


def test_flat_layout_of_the_configmap_has_the_same_version(reference: str) -> None:
    """The Kubernetes ConfigMap's flat copy of the example folder reports the same version."""
    assert version(FLAT_COPY) == reference


def test_renamed_and_regrouped_files_have_the_same_version(tmp_path: Path, reference: str) -> None:
    """Other file names, one object per file, in nested folders: the same version."""
    root = tmp_path / "renamed"
    write_each(root, objects(), lambda i: f"object-{i:03d}-renamed.json")
    (root / "nested" / "deeper").mkdir(parents=True)
    shutil.move(root / "object-000-renamed.json", root / "nested" / "deeper" / "zzz.json")
    assert version(root) == reference


def test_order_of_files_and_objects_does_not_matter(tmp_path: Path, reference: str) -> None:
    """All objects in one Graph list response, in reverse order: the same version."""
    root = tmp_path / "reversed"
    root.mkdir()
    listing = {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x", "value": []}
    listing["value"] = list(reversed(objects()))
    (root / "export.json").write_text(json.dumps(listing), "utf-8")
    assert version(root) == reference
    reordered = tmp_path / "reordered"
    write_each(reordered, objects(), lambda i: f"{99 - i:02d}.json")  # reverse name order
    assert version(reordered) == reference
    assert answer(reordered) == answer(EXAMPLE), "same version, same answer, byte for byte"


def answer(root: Path) -> bytes:
    """The serialized response of the example set's challenge walk-through request."""
    store = PolicyStore()
    store.load(root)
    request = json_format.Parse(
        (ROOT / "examples" / "requests" / "engineer-dev-from-home-password-only.json").read_text(),
        pb.EvaluateRequest(),
    )
    ctx = to_context(request, 1.8e9)
    response = to_response(Decider(store).decide_without_risk(ctx), ctx)
    assert len(response.policies) >= 2
    return response.SerializeToString(deterministic=True)


def test_encoding_and_line_endings_do_not_matter(tmp_path: Path, reference: str) -> None:
    """UTF-16LE with a BOM and CRLF line endings, as Graph exports often are: the same version."""
    root = tmp_path / "utf16"
    root.mkdir()
    for index, item in enumerate(objects()):
        text = json.dumps(item, indent=4, ensure_ascii=False).replace("\n", "\r\n")
        (root / f"{index}.json").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    assert version(root) == reference


def test_yaml_and_json_give_the_same_version(tmp_path: Path, reference: str) -> None:
    """The same objects as YAML documents, keys in another order: the same version."""
    root = tmp_path / "yaml"
    root.mkdir()
    documents = [dict(reversed(list(item.items()))) for item in objects()]
    (root / "policies.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False), "utf-8")
    assert version(root) == reference


def test_enum_case_and_annotations_do_not_matter(tmp_path: Path, reference: str) -> None:
    """Graph's looseness (enum case, OData annotations) parses to the same meaning."""
    items = objects()
    for item in items:
        item["@odata.etag"] = 'W/"abc"'
        if "conditions" in item:
            conditions = item["conditions"]
            conditions["clientAppTypes"] = [t.upper() for t in conditions["clientAppTypes"]]
    root = write_each(tmp_path / "loose", items, lambda i: f"{i}.json")
    assert version(root) == reference


def _first_policy(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(item for item in items if "conditions" in item)


def _first_location(items: list[dict[str, Any]]) -> dict[str, Any]:
    return next(item for item in items if "ipRanges" in item)


CHANGES: dict[str, Callable[[list[dict[str, Any]]], None]] = {
    "display name": lambda items: _first_policy(items).update(displayName="renamed"),
    "state": lambda items: _first_policy(items).update(state="disabled"),
    "a group excluded": lambda items: _first_policy(items)["conditions"]["users"].update(
        excludeGroups=["0a0a0a0a-0000-4000-8000-000000000000"]
    ),
    "a range added": lambda items: _first_location(items)["ipRanges"].append(
        {"cidrAddress": "192.0.2.0/24"}
    ),
    "trust": lambda items: _first_location(items).update(isTrusted=False),
    "a policy removed": lambda items: items.remove(_first_policy(items)),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_change_of_meaning_changes_the_version(
    tmp_path: Path, reference: str, change: str
) -> None:
    """A name, state, condition, range, trust flag or policy more or less: another version."""
    items = objects()
    CHANGES[change](items)
    root = write_each(tmp_path / "changed", items, lambda i: f"{i}.json")
    assert version(root) != reference


def test_canonical_form_is_sorted_and_complete() -> None:
    """Sets are sorted, enums are their values, networks their CIDR; file origins are left out."""
    policy_set = load_policy_set(EXAMPLE)[0]
    form = canonical(policy_set)
    assert isinstance(form, dict)
    assert "version" not in form
    policies = form["policies"]
    assert isinstance(policies, list)
    assert [p["id"] for p in policies if isinstance(p, dict)] == sorted(
        p.id for p in policy_set.policies
    )
    assert all(isinstance(p, dict) and "source" not in p for p in policies)
    assert policy_set_version(policy_set) == policy_set.version
    text = json.dumps(form)
    assert '"203.0.113.0/24"' in text
    assert '"enabledForReportingButNotEnforced"' in text


def test_fields_at_their_default_are_left_out() -> None:
    """Fields at their default are left out: a model field a set does not use keeps its version."""
    assert canonical(Users()) == {"@type": "Users"}
    assert canonical(Users(include_users=frozenset({"b", "a"}))) == {
        "@type": "Users",
        "include_users": ["a", "b"],
    }


def test_unknown_value_types_are_refused() -> None:
    """A model value of a type the hash does not know is an error, never silently skipped."""
    with pytest.raises(TypeError, match="cannot hash a bytes"):
        canonical({"x": b"raw"})
