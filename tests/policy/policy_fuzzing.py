"""Hypothesis strategies for hostile policy files, and the one check every input must pass.

Shared by the bounded run in `test_fuzz_policies.py` and the long run of
`scripts/fuzz_policies.py`. Inputs come in four flavours: Graph-shaped documents built from
the property names pdp knows (so the parser's every branch is reached), mutations of the
real exports in tests/corpus, YAML text with anchors, aliases, tags and merges, and raw bytes
behind every byte-order mark.

`check_files` is the property: the real loader either returns a policy set or raises
`PolicySetError` (nothing else), every diagnostic is short, and a set that loads compiles
and decides a handful of sign-ins without an exception.
"""

from __future__ import annotations

import codecs
import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from pdp.context import SignInContext
from pdp.engine.evaluate import evaluate
from pdp.policy import schema
from pdp.policy.compile import compile_policy_set
from pdp.policy.diagnostics import PolicySetError
from pdp.policy.load import load_policy_set
from pdp.policy.source import load_sources

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "ca-policies"
MAX_DIAGNOSTIC_CHARS = 10_000
TRIED = [0]  # inputs checked so far in this process


def _property_names() -> list[str]:
    names: set[str] = set()
    stack: list[schema.GraphType] = [
        schema.POLICY,
        schema.IP_NAMED_LOCATION,
        schema.COUNTRY_NAMED_LOCATION,
        schema.COMPLIANT_NETWORK_NAMED_LOCATION,
    ]
    while stack:
        graph_type = stack.pop()
        for name, child in graph_type.properties.items():
            names.add(name)
            if isinstance(child, schema.GraphType):
                stack.append(child)
            elif isinstance(child, schema.ListOf):
                stack.append(child.item)
    return sorted(names)


KEYS = [
    *_property_names(),
    "@odata.type",
    "includeUsers@odata.type",
    "#microsoft.graph.restore",
    "pdp",
    "applicationGroups",
    "objectIds",
    "value",
    "@odata.nextLink",
    "includeGroup",
    "builtinControls",
]
TEXTS = [
    "All",
    "None",
    "AllTrusted",
    "GuestsOrExternalUsers",
    "ServicePrincipalsInMyTenant",
    "Office365",
    "AllAgentIdResources",
    "enabled",
    "disabled",
    "enabledForReportingButNotEnforced",
    "mfa",
    "block",
    "compliantDevice",
    "OR",
    "AND",
    "all",
    "browser",
    "high",
    "include",
    "exclude",
    "timeBased",
    "everyTime",
    "hours",
    "days",
    "any",
    "guid",
    "enumerated",
    "b2bCollaborationGuest,internalGuest",
    "deviceCodeFlow",
    "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01",
    "00000000-0000-0000-0000-000000000002",
    "b0c1d2e3-0000-4000-8000-00000000c0a1",
    "<EmergencyAccessGroup>",
    "203.0.113.0/24",
    "2001:db8::/48",
    "10.0.0.1",
    "0.0.0.0/0",
    "not a cidr",
    "NL",
    "#microsoft.graph.conditionalAccessPolicy",
    "#microsoft.graph.ipNamedLocation",
    "#microsoft.graph.countryNamedLocation",
    "#microsoft.graph.compliantNetworkNamedLocation",
    "#microsoft.graph.authenticationStrengthPolicy",
    'device.model -eq "x"',
    'device.displayName -match "^(a+)+$"',
    'device.model -match "(a)\\1"',
    'device.isCompliant -eq True -and (device.trustType -in ["AzureAD", "ServerAD"])',
    "((((((((((",
    "password,sms",
    "fido2",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(TEXTS),
    st.text(max_size=30),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=40,
)
kinds = st.sampled_from(
    [
        "#microsoft.graph.conditionalAccessPolicy",
        "#microsoft.graph.ipNamedLocation",
        "#microsoft.graph.countryNamedLocation",
        "#microsoft.graph.compliantNetworkNamedLocation",
        "#microsoft.graph.authenticationStrengthPolicy",
    ]
)


@st.composite
def graph_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A Graph-shaped document: a kind, and properties pdp knows holding anything."""
    document: dict[str, Any] = draw(st.dictionaries(keys, values, max_size=8))
    if draw(st.booleans()):
        document["@odata.type"] = draw(kinds)
    if draw(st.booleans()):
        document["conditions"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "users": st.dictionaries(keys, values, max_size=4),
                    "applications": st.dictionaries(keys, values, max_size=4),
                    "devices": st.fixed_dictionaries(
                        {"deviceFilter": st.dictionaries(keys, values, max_size=3)}
                    ),
                    "locations": st.dictionaries(keys, values, max_size=3),
                    "clientAppTypes": values,
                },
            )
        )
    if draw(st.booleans()):
        document["pdp"] = draw(st.dictionaries(keys, values, max_size=3))
    return document


def _corpus_documents() -> list[dict[str, Any]]:
    return [doc.data for doc in load_sources(CORPUS).documents]


CORPUS_DOCUMENTS = _corpus_documents()


@st.composite
def mutated_corpus_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A real export with a few of its values replaced, removed or added at random."""
    document = copy.deepcopy(draw(st.sampled_from(CORPUS_DOCUMENTS)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        node: Any = document
        # Walk down a few levels, then change what is there.
        for _ in range(draw(st.integers(min_value=0, max_value=4))):
            children = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
            containers = [(k, v) for k, v in children if isinstance(v, dict | list) and v]
            if not containers:
                break
            _, node = draw(st.sampled_from(containers))
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(sorted(node, key=str)))
            action = draw(st.sampled_from(["replace", "delete", "add"]))
            if action == "replace":
                node[key] = draw(values)
            elif action == "delete":
                del node[key]
            else:
                node[draw(keys)] = draw(values)
        elif isinstance(node, list) and node:
            node[draw(st.integers(min_value=0, max_value=len(node) - 1))] = draw(values)
    return document


YAML_PIECES = [
    "&a ",
    "*a",
    "&b [x, *a]",
    "<<: *a",
    "!!binary aGk=",
    "!!set {a}",
    "!!str 1",
    "? [a]\n: b",
    "---\n",
    "...\n",
    "- ",
    "  ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    '"',
    "'",
    "\n",
    "# c\n",
    "1: x\n",
    "state: enabled\n",
    "displayName: &n name\n",
    "conditions: {users: {includeUsers: [All]}, applications: {includeApplications: [All]}}\n",
    "grantControls: {operator: OR, builtInControls: [mfa]}\n",
    "'@odata.type': '#microsoft.graph.conditionalAccessPolicy'\n",
]


@st.composite
def yaml_texts(draw: st.DrawFn) -> str:
    """YAML text: a dumped document with pieces (anchors, aliases, tags) spliced in."""
    base = yaml.safe_dump(draw(graph_documents()), allow_unicode=True)
    for _ in range(draw(st.integers(min_value=0, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(base)))
        piece = draw(st.one_of(st.sampled_from(YAML_PIECES), st.text(max_size=5)))
        base = base[:at] + piece + base[at:]
    return base


BOMS = [b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE]
raw_files = st.tuples(st.sampled_from(BOMS), st.binary(max_size=200)).map(lambda t: t[0] + t[1])
SIGN_INS = [
    SignInContext(request_id="fuzz", time=1_780_000_000.0),
    SignInContext(
        request_id="fuzz",
        time=1_780_000_000.0,
        user_id="6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01",
        group_ids=frozenset({"6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"}),
        application_id="00000003-0000-0ff1-ce00-000000000000",
        ip_address="203.0.113.7",
        ip_value=(203 << 24) + (113 << 8) + 7,
        ip_version=4,
        country="NL",
        platform="windows",
        client_app_type="browser",
        methods=frozenset({"password"}),
        device_properties={"model": "a" * 40, "displayname": "SAW-1", "iscompliant": "True"},
        explain=True,
    ),
    SignInContext(request_id="fuzz", time=1_780_000_000.0, service_principal_id="sp", explain=True),
]


def check_files(files: dict[str, bytes]) -> None:
    """Load `files` (name -> bytes) as a policy folder; fail on anything but the contract."""
    TRIED[0] += 1
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, raw in files.items():
            (root / name).write_bytes(raw)
        try:
            policy_set, diagnostics = load_policy_set(root)
        except PolicySetError as refused:
            diagnostics, policy_set = refused.diagnostics, None
    for diagnostic in diagnostics:
        assert len(str(diagnostic)) < MAX_DIAGNOSTIC_CHARS, str(diagnostic)[:500]
    if policy_set is not None:
        compiled = compile_policy_set(policy_set)
        for ctx in SIGN_INS:
            evaluate(ctx, compiled)


def as_json(documents: Any) -> bytes:
    """Documents as a JSON file's bytes (NaN and Infinity as Python's json writes them)."""
    return json.dumps(documents).encode("utf-8")
