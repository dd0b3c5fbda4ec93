"""Tests for pdp.policy.source: files on disk -> raw Graph documents with diagnostics."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pdp.policy.decode import decode_text
from pdp.policy.diagnostics import Diagnostic, Severity
from pdp.policy.source import (
    UNKNOWN_KIND,
    DocumentKind,
    LoadedSources,
    load_sources,
)

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "ca-policies"

POLICY = {
    "@odata.context": "https://graph.microsoft.com/beta/$metadata#identity/conditionalAccess/policies/$entity",
    "id": "11111111-1111-1111-1111-111111111111",
    "displayName": "Require MFA for admins",
    "state": "enabled",
    "conditions": {"users": {"includeUsers": ["All"]}, "applications@odata.type": "x"},
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
}
COUNTRY = {
    "@odata.type": "#microsoft.graph.countryNamedLocation",
    "id": "22222222-2222-2222-2222-222222222222",
    "displayName": "Allowed countries",
    "countriesAndRegions": ["NL", "BE"],
}


def write(folder: Path, name: str, content: str | bytes | Any) -> Path:
    """Write text, bytes or (anything else) JSON to folder/name, creating parent folders."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        text = content if isinstance(content, str) else json.dumps(content, indent=2)
        path.write_text(text, encoding="utf-8")
    return path


def load_one(tmp_path: Path, name: str, content: str | bytes | Any) -> LoadedSources:
    """Load a single file as the root."""
    return load_sources(write(tmp_path, name, content))


def error(file: str, path: str, message: str, policy: str = "") -> Diagnostic:
    """Build the expected error."""
    return Diagnostic(Severity.ERROR, file, path, message, policy)


def warning(file: str, path: str, message: str, policy: str = "") -> Diagnostic:
    """Build the expected warning."""
    return Diagnostic(Severity.WARNING, file, path, message, policy)


def where(loaded: LoadedSources) -> list[tuple[DocumentKind, str, str, str]]:
    """Kind, file, path and label of every document loaded."""
    return [(d.kind, d.file, d.path, d.label) for d in loaded.documents]


# --- shapes -------------------------------------------------------------------------------


def test_single_object_is_one_document_at_dollar_with_data_unchanged(tmp_path: Path) -> None:
    """A file holding one object gives one document at "$" whose data is the raw object."""
    loaded = load_one(tmp_path, "p.json", POLICY)
    assert loaded.diagnostics == []
    assert where(loaded) == [(DocumentKind.POLICY, "p.json", "$", POLICY["id"])]
    assert loaded.documents[0].data == POLICY  # OData annotations kept
    assert loaded.files == ["p.json"]


def test_array_of_objects_gives_indexed_paths(tmp_path: Path) -> None:
    """A top-level array gives one document per element at "$[i]"."""
    loaded = load_one(tmp_path, "all.json", [POLICY, COUNTRY])
    assert loaded.diagnostics == []
    assert where(loaded) == [
        (DocumentKind.POLICY, "all.json", "$[0]", POLICY["id"]),
        (DocumentKind.COUNTRY_NAMED_LOCATION, "all.json", "$[1]", COUNTRY["id"]),
    ]


def test_graph_list_response_gives_value_paths(tmp_path: Path) -> None:
    """A Graph list response {"@odata.context", "value": [...]} gives "$.value[i]" documents."""
    response = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
        "value": [COUNTRY],
    }
    loaded = load_one(tmp_path, "locations.json", response)
    assert loaded.diagnostics == []
    assert where(loaded) == [
        (DocumentKind.COUNTRY_NAMED_LOCATION, "locations.json", "$.value[0]", COUNTRY["id"])
    ]


@pytest.mark.parametrize(("next_link", "warned"), [("https://graph/next", True), ("", False)])
def test_paged_graph_response_warns_only_for_a_next_link(
    tmp_path: Path, next_link: str, warned: bool
) -> None:
    """A non-empty @odata.nextLink warns that only this page is loaded; the page still loads."""
    loaded = load_one(tmp_path, "p.json", {"value": [POLICY], "@odata.nextLink": next_link})
    expected = warning(
        "p.json", '$["@odata.nextLink"]', "paged Graph response: only this page is loaded"
    )
    assert loaded.diagnostics == ([expected] if warned else [])
    assert [d.path for d in loaded.documents] == ["$.value[0]"]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('"policy"', "a string"),
        ("42", "a number"),
        ("1.5", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ],
)
def test_top_level_scalar_is_an_error(tmp_path: Path, text: str, found: str) -> None:
    """A top-level value that is not an object or array is an error naming what was found."""
    loaded = load_one(tmp_path, "x.json", text)
    message = f"expected an object, an array of objects or a Graph list response, found {found}"
    assert loaded.diagnostics == [error("x.json", "$", message)]
    assert loaded.documents == []


def test_array_elements_that_are_not_objects_are_errors_each(tmp_path: Path) -> None:
    """Each non-object element of an array is an error at its own path; objects still load."""
    loaded = load_one(tmp_path, "x.json", [1, "a", POLICY, [], None, {"value": [True]}])
    assert loaded.diagnostics == [
        error("x.json", "$[0]", "expected an object, found a number"),
        error("x.json", "$[1]", "expected an object, found a string"),
        error("x.json", "$[3]", "expected an object, found an array"),
        error("x.json", "$[4]", "expected an object, found null"),
        error("x.json", "$[5]", UNKNOWN_KIND),
    ]
    assert [d.path for d in loaded.documents] == ["$[2]"]


def test_non_objects_in_a_graph_list_response_are_errors(tmp_path: Path) -> None:
    """Non-object elements of a list response's "value" are errors at "$.value[i]"."""
    loaded = load_one(tmp_path, "x.json", {"value": ["x"]})
    assert loaded.diagnostics == [
        error("x.json", "$.value[0]", "expected an object, found a string")
    ]


@pytest.mark.parametrize(
    ("name", "content", "path"),
    [
        ("empty.json", b"", "$"),
        ("blank.json", "  \r\n", "$"),
        ("array.json", "[]", "$"),
        ("page.json", '{"value": []}', "$.value"),
        ("empty.yaml", "", "$"),
        ("comments.yaml", "# nothing here\n", "$"),
        ("bom.json", b"\xef\xbb\xbf", "$"),
    ],
)
def test_empty_sources_warn_no_documents(
    tmp_path: Path, name: str, content: str | bytes, path: str
) -> None:
    """An empty file, empty array or empty list response is a warning, not an error."""
    loaded = load_one(tmp_path, name, content)
    assert loaded.diagnostics == [warning(name, path, "no documents")]
    assert loaded.documents == []
    assert loaded.files == [name]


# --- kinds --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("odata_type", "kind"),
    [
        ("#microsoft.graph.conditionalAccessPolicy", DocumentKind.POLICY),
        ("microsoft.graph.ipNamedLocation", DocumentKind.IP_NAMED_LOCATION),
        ("countryNamedLocation", DocumentKind.COUNTRY_NAMED_LOCATION),
        (
            "#MICROSOFT.GRAPH.COMPLIANTNETWORKNAMEDLOCATION",
            DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION,
        ),
        ("#microsoft.graph.authenticationStrengthPolicy", DocumentKind.AUTHENTICATION_STRENGTH),
    ],
)
def test_kind_by_odata_type(tmp_path: Path, odata_type: str, kind: DocumentKind) -> None:
    """@odata.type decides the kind, case-insensitively, with or without "#microsoft.graph."."""
    loaded = load_one(tmp_path, "d.json", {"@odata.type": odata_type, "id": "x"})
    assert loaded.diagnostics == []
    assert where(loaded) == [(kind, "d.json", "$", "x")]


@pytest.mark.parametrize(
    ("document", "kind"),
    [
        ({"conditions": {}}, DocumentKind.POLICY),
        ({"ipRanges": []}, DocumentKind.IP_NAMED_LOCATION),
        ({"countriesAndRegions": ["NL"]}, DocumentKind.COUNTRY_NAMED_LOCATION),
        (
            {"compliantNetworkType": "allTenantCompliantNetworks"},
            DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION,
        ),
        ({"allowedCombinations": ["password"]}, DocumentKind.AUTHENTICATION_STRENGTH),
        ({"pdp": {"applicationGroups": {}}}, DocumentKind.PDP_CONFIG),
        ({"@odata.type": "", "conditions": {}}, DocumentKind.POLICY),
    ],
)
def test_kind_by_shape_without_odata_type(
    tmp_path: Path, document: dict[str, Any], kind: DocumentKind
) -> None:
    """Without @odata.type the kind follows from a characteristic key; data is the whole object."""
    loaded = load_one(tmp_path, "d.json", document)
    assert loaded.diagnostics == []
    assert [(d.kind, d.data) for d in loaded.documents] == [(kind, document)]


@pytest.mark.parametrize(
    ("document", "suffix", "label"),
    [
        (
            {"id": "g1", "@odata.type": "#microsoft.graph.group"},
            "; found @odata.type '#microsoft.graph.group'",
            "g1",
        ),
        ({"displayName": "Odd", "@odata.type": 7}, "; found @odata.type 7", "Odd"),
        ({"displayName": "No shape", "conditions": []}, "", "No shape"),
        ({"pdp": "not a section"}, "", ""),
        ({}, "", ""),
    ],
)
def test_unknown_document_is_an_error_with_its_label(
    tmp_path: Path, document: dict[str, Any], suffix: str, label: str
) -> None:
    """An unknown @odata.type or an object of no known shape is an error carrying the label."""
    loaded = load_one(tmp_path, "d.json", [document])
    assert loaded.diagnostics == [error("d.json", "$[0]", UNKNOWN_KIND + suffix, label)]
    assert loaded.documents == []


def test_unknown_kind_message_is_exact() -> None:
    """The unknown-kind message lists every accepted Graph type."""
    assert UNKNOWN_KIND == (
        "cannot tell what this document is: expected a conditionalAccessPolicy, ipNamedLocation, "
        "countryNamedLocation, compliantNetworkNamedLocation or authenticationStrengthPolicy "
        "(by @odata.type or shape)"
    )


@pytest.mark.parametrize(
    ("document", "label"),
    [
        ({"id": "abc", "displayName": "Name"}, "abc"),
        ({"id": "", "displayName": "Name"}, "Name"),
        ({"id": 5, "displayName": "Name"}, "Name"),
        ({"displayName": ""}, ""),
        ({}, ""),
    ],
)
def test_label_is_id_else_display_name(
    tmp_path: Path, document: dict[str, Any], label: str
) -> None:
    """The label is a non-empty string id, else a non-empty displayName, else ""."""
    loaded = load_one(tmp_path, "d.json", {**document, "conditions": {}})
    assert [d.label for d in loaded.documents] == [label]


# --- encodings ----------------------------------------------------------------------------

UNICODE_POLICY = json.dumps(
    {**POLICY, "displayName": "Zugriff für Gäste, 東京"}, ensure_ascii=False, indent=4
)
CRLF = UNICODE_POLICY.replace("\n", "\r\n")


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(UNICODE_POLICY.encode("utf-8"), id="utf-8"),
        pytest.param(b"\xef\xbb\xbf" + CRLF.encode("utf-8"), id="utf-8-bom-crlf"),
        pytest.param(b"\xff\xfe" + CRLF.encode("utf-16-le"), id="utf-16le-bom-crlf"),
        pytest.param(b"\xfe\xff" + UNICODE_POLICY.encode("utf-16-be"), id="utf-16be-bom"),
        pytest.param(b"\xff\xfe\x00\x00" + UNICODE_POLICY.encode("utf-32-le"), id="utf-32le-bom"),
        pytest.param(b"\x00\x00\xfe\xff" + UNICODE_POLICY.encode("utf-32-be"), id="utf-32be-bom"),
        pytest.param(CRLF.encode("utf-16-le"), id="utf-16le-no-bom"),
        pytest.param(UNICODE_POLICY.encode("utf-16-be"), id="utf-16be-no-bom"),
    ],
)
def test_encodings_decode_to_the_same_document(tmp_path: Path, raw: bytes) -> None:
    """BOM-marked UTF-8/16/32 and BOM-less UTF-8/UTF-16 files all load the same document."""
    assert decode_text(raw).lstrip("\ufeff") == decode_text(raw)  # the BOM is dropped
    loaded = load_one(tmp_path, "p.json", raw)
    assert loaded.diagnostics == []
    assert [d.data["displayName"] for d in loaded.documents] == ["Zugriff für Gäste, 東京"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"a": "\xe9"}', "not valid UTF-8 text (invalid continuation byte at byte 7)"),
        (b"\xef\xbb\xbf{\xff}", "not valid UTF-8 text (invalid start byte at byte 4)"),
        (b"\xff\xfe{\x00\x00\xd8", "not valid UTF-16 text (unexpected end of data at byte 4)"),
    ],
)
def test_undecodable_bytes_are_an_error(tmp_path: Path, raw: bytes, message: str) -> None:
    """Bytes that do not decode give one error with the reason and byte offset; no documents."""
    loaded = load_one(tmp_path, "bad.json", raw)
    assert loaded.diagnostics == [error("bad.json", "$", message)]
    assert loaded.files == ["bad.json"]
    with pytest.raises(ValueError, match=r"^not valid"):
        decode_text(raw)


# --- parse errors and duplicate keys ------------------------------------------------------


def test_json_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    """Invalid JSON is one error at "$" with the parser's message, line and column."""
    loaded = load_one(tmp_path, "bad.json", '{\n  "a": 1,\n  "b" 2\n}')
    assert loaded.diagnostics == [
        error("bad.json", "$", "invalid JSON: Expecting ':' delimiter (line 3, column 7)")
    ]
    assert loaded.documents == []


CONFLICT = ": the later value silently replaces the earlier one"
HARMLESS = ": the later value is used (the earlier one is null or the same)"


@pytest.mark.parametrize(
    ("text", "path", "key"),
    [
        (
            '[{"id": "p1", "conditions": {"users": {"x": ["a"], "x": ["b"]}}}]',
            "$[0].conditions.users.x",
            "x",
        ),
        (
            '[{"id": "p1", "conditions": {}, "@odata.type": "#t", "@odata.type": "#t2"}]',
            '$[0]["@odata.type"]',
            "@odata.type",
        ),
        ('[{"id": "p1", "conditions": {"a": [{"b": 1, "b": 2}]}}]', "$[0].conditions.a[0].b", "b"),
    ],
)
def test_conflicting_duplicate_key_is_an_error_at_its_path(
    tmp_path: Path, text: str, path: str, key: str
) -> None:
    """A key written twice with different values is an error naming the key and its JSON path."""
    loaded = load_one(tmp_path, "dup.json", text)
    errors = [d for d in loaded.diagnostics if d.message.startswith("duplicate")]
    assert errors == [error("dup.json", path, f'duplicate key "{key}"{CONFLICT}', "p1")]


def test_duplicate_key_keeps_the_later_value_like_json(tmp_path: Path) -> None:
    """The document still loads with the later value, so later stages can report more."""
    loaded = load_one(tmp_path, "dup.json", '{"conditions": {"state": 1, "state": 2}}')
    assert loaded.documents[0].data == {"conditions": {"state": 2}}


@pytest.mark.parametrize(
    ("text", "path", "key"),
    [
        (
            '{"displayName": "P", "sessionControls": null, "conditions": {},'
            ' "sessionControls": {"a": 1}}',
            "$.sessionControls",
            "sessionControls",
        ),
        (
            '{"displayName": "P", "conditions": {}, "state": "on", "state": "on"}',
            "$.state",
            "state",
        ),
    ],
)
def test_duplicate_key_replacing_null_or_same_value_is_a_warning(
    tmp_path: Path, text: str, path: str, key: str
) -> None:
    """A duplicate whose earlier values are null or equal loses nothing: a warning, not an error."""
    loaded = load_one(tmp_path, "dup.json", text)
    assert loaded.diagnostics == [
        warning("dup.json", path, f'duplicate key "{key}"{HARMLESS}', "P")
    ]
    assert [d.kind for d in loaded.documents] == [DocumentKind.POLICY]


def test_duplicate_key_in_a_graph_list_response_envelope(tmp_path: Path) -> None:
    """A duplicated "value" in a list response is reported on the envelope, not lost."""
    loaded = load_one(tmp_path, "dup.json", '{"value": [{"conditions": {}}], "value": []}')
    assert loaded.diagnostics == [
        error("dup.json", "$.value", f'duplicate key "value"{CONFLICT}'),
        warning("dup.json", "$.value", "no documents"),
    ]


# --- YAML ---------------------------------------------------------------------------------


def test_yaml_single_document_uses_json_paths(tmp_path: Path) -> None:
    """A YAML file with one document has the same paths as JSON; timestamps stay strings."""
    text = (
        "- id: p1\n  modifiedDateTime: 2024-05-04T10:12:33.1234567Z\n  conditions: {}\n"
        "- ipRanges: []\n"
    )
    loaded = load_one(tmp_path, "p.yaml", text)
    assert loaded.diagnostics == []
    assert where(loaded) == [
        (DocumentKind.POLICY, "p.yaml", "$[0]", "p1"),
        (DocumentKind.IP_NAMED_LOCATION, "p.yaml", "$[1]", ""),
    ]
    assert loaded.documents[0].data["modifiedDateTime"] == "2024-05-04T10:12:33.1234567Z"


def test_yaml_multi_document_paths_are_prefixed_with_document_index(tmp_path: Path) -> None:
    """In a multi-document YAML file the N-th (0-based) document's paths start "$#N"."""
    text = (
        "id: p0\nconditions: {}\n"
        "---\n- countriesAndRegions: [NL]\n  id: c1\n"
        "---\n"  # an empty document keeps its index
        "---\nvalue:\n  - pdp: {}\n"
    )
    loaded = load_one(tmp_path, "multi.YML", text)
    assert loaded.diagnostics == []
    assert where(loaded) == [
        (DocumentKind.POLICY, "multi.YML", "$#0", "p0"),
        (DocumentKind.COUNTRY_NAMED_LOCATION, "multi.YML", "$#1[0]", "c1"),
        (DocumentKind.PDP_CONFIG, "multi.YML", "$#3.value[0]", ""),
    ]


def test_yaml_multi_document_shape_errors_name_the_document(tmp_path: Path) -> None:
    """A bad top-level value in the 2nd YAML document is reported at "$#1"."""
    loaded = load_one(tmp_path, "multi.yaml", "conditions: {}\n---\njust text\n")
    message = "expected an object, an array of objects or a Graph list response, found a string"
    assert loaded.diagnostics == [error("multi.yaml", "$#1", message)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1, 2\nb: 3\n", "invalid YAML: expected ',' or ']', but got ':' (line 2, column 2)"),
        (
            "conditions: {}\nstate: on\nstate: off\n",
            'invalid YAML: duplicate key "state" (line 3, column 1)',
        ),
    ],
)
def test_yaml_errors_have_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    """YAML syntax errors and duplicate keys are one error at "$" with line and column."""
    loaded = load_one(tmp_path, "bad.yaml", text)
    assert loaded.diagnostics == [error("bad.yaml", "$", message)]
    assert loaded.documents == []


# --- files and folders --------------------------------------------------------------------


def test_folder_walk_is_recursive_sorted_and_skips_hidden_and_other_files(tmp_path: Path) -> None:
    """Folders are walked sorted for .json/.yaml/.yml in any case; hidden/other files skipped."""
    root = tmp_path / "policies"
    write(root, "b.json", POLICY)
    write(root, "a/z.JSON", COUNTRY)
    write(root, "a/y.Yml", "conditions: {}\n")
    write(root, "a-b.yaml", "ipRanges: []\n")
    write(root, "README.md", "# not policy")
    write(root, "notes.txt", "{}")
    write(root, ".hidden.json", "not even json")
    write(root, ".git/x.json", "not even json")
    loaded = load_sources(root)
    assert loaded.diagnostics == []
    assert loaded.files == ["a-b.yaml", "a/y.Yml", "a/z.JSON", "b.json"]
    assert [d.file for d in loaded.documents] == loaded.files


def test_configmap_layout_reads_each_file_once_via_its_top_level_link(tmp_path: Path) -> None:
    """A ConfigMap mount (..data, timestamped folder, top-level links) loads each file once."""
    root = tmp_path / "mount"
    write(root, "..2024_05_04_10_12_33.123456789/policy.json", POLICY)
    write(root, "..2024_05_04_10_12_33.123456789/locations.yaml", "countriesAndRegions: [NL]\n")
    (root / "..data").symlink_to("..2024_05_04_10_12_33.123456789")
    (root / "policy.json").symlink_to("..data/policy.json")
    (root / "locations.yaml").symlink_to("..data/locations.yaml")
    loaded = load_sources(root)
    assert loaded.diagnostics == []
    assert loaded.files == ["locations.yaml", "policy.json"]
    assert [d.kind for d in loaded.documents] == [
        DocumentKind.COUNTRY_NAMED_LOCATION,
        DocumentKind.POLICY,
    ]


def test_symlinked_folder_cycle_terminates(tmp_path: Path) -> None:
    """A folder link back to an ancestor is not followed twice."""
    root = tmp_path / "root"
    write(root, "sub/p.json", POLICY)
    (root / "sub" / "loop").symlink_to(root, target_is_directory=True)
    loaded = load_sources(root)
    assert loaded.files == ["sub/p.json"]


def test_broken_symlink_is_an_error(tmp_path: Path) -> None:
    """A policy file name that links to nothing is an error for that file."""
    root = tmp_path / "root"
    write(root, "ok.json", POLICY)
    (root / "gone.json").symlink_to(root / "missing.json")
    loaded = load_sources(root)
    assert loaded.diagnostics == [
        error("gone.json", "$", "cannot read file (No such file or directory)")
    ]
    assert loaded.files == ["ok.json"]


def test_missing_root_is_an_error(tmp_path: Path) -> None:
    """A root that does not exist is one error naming it."""
    root = tmp_path / "nope"
    loaded = load_sources(root)
    assert loaded.diagnostics == [error(str(root), "$", "no such file or directory")]
    assert (loaded.documents, loaded.files) == ([], [])


def test_folder_without_policy_files_is_an_error(tmp_path: Path) -> None:
    """A folder with no .json/.yaml/.yml files (hidden ones do not count) is an error."""
    write(tmp_path, "notes.txt", "{}")
    write(tmp_path, ".hidden.json", "{}")
    loaded = load_sources(tmp_path)
    assert loaded.diagnostics == [error(str(tmp_path), "$", "no .json, .yaml or .yml files found")]


def test_root_file_with_other_suffix_is_an_error(tmp_path: Path) -> None:
    """A root that is a file but not .json/.yaml/.yml is refused by name."""
    loaded = load_one(tmp_path, "policy.txt", POLICY)
    assert loaded.diagnostics == [error("policy.txt", "$", "not a .json, .yaml or .yml file")]


# --- digest -------------------------------------------------------------------------------


def test_digest_is_stable_and_location_independent(tmp_path: Path) -> None:
    """The digest depends on relative paths and bytes only: same tree, same digest."""
    for name in ("one", "two"):
        write(tmp_path / name, "p.json", POLICY)
        write(tmp_path / name, "sub/l.yaml", "countriesAndRegions: [NL]\n")
    first = load_sources(tmp_path / "one")
    assert (
        first.digest
        == load_sources(tmp_path / "one").digest
        == load_sources(tmp_path / "two").digest
    )
    assert len(first.digest) == 64
    assert int(first.digest, 16) >= 0


@pytest.mark.parametrize("change", ["content", "rename", "add", "remove", "whitespace"])
def test_digest_changes_with_any_file_change(tmp_path: Path, change: str) -> None:
    """Changing, renaming, adding or removing a file, even by one byte, changes the digest."""
    write(tmp_path, "p.json", POLICY)
    write(tmp_path, "q.json", COUNTRY)
    before = load_sources(tmp_path).digest
    if change == "content":
        write(tmp_path, "p.json", {**POLICY, "state": "disabled"})
    elif change == "rename":
        (tmp_path / "p.json").rename(tmp_path / "p2.json")
    elif change == "add":
        write(tmp_path, "r.json", "[]")
    elif change == "remove":
        (tmp_path / "q.json").unlink()
    else:
        write(tmp_path, "p.json", json.dumps(POLICY, indent=2) + "\n")
    assert load_sources(tmp_path).digest != before


def test_digest_covers_files_that_fail_to_parse(tmp_path: Path) -> None:
    """Files read but refused still count in files and digest."""
    write(tmp_path, "bad.json", "{")
    before = load_sources(tmp_path)
    write(tmp_path, "bad.json", "{{")
    assert before.files == ["bad.json"]
    assert load_sources(tmp_path).digest != before.digest


# --- the real corpus ----------------------------------------------------------------------


def test_real_corpus_loads_without_errors() -> None:
    """The 98 real exports (UTF-16LE/UTF-8 BOM, UTF-8) give 95 policies, 3 locations, no error."""
    assert CORPUS.is_dir(), f"corpus missing: {CORPUS}"
    loaded = load_sources(CORPUS)
    assert [d for d in loaded.diagnostics if d.severity is Severity.ERROR] == []
    assert len(loaded.files) == 98
    assert Counter(d.kind for d in loaded.documents) == {
        DocumentKind.POLICY: 95,
        DocumentKind.COUNTRY_NAMED_LOCATION: 2,
        DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION: 1,
    }
    assert all(d.path == "$" for d in loaded.documents)
    # One template writes "sessionControls": null and later the real value: a warning only.
    assert [(d.path, d.message.split(":")[0]) for d in loaded.diagnostics] == [
        ("$.sessionControls", 'duplicate key "sessionControls"')
    ]
