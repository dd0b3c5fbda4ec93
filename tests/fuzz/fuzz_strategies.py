"""Hypothesis strategies for what callers send pdp: EvaluateRequests, CheckRequests, CLI JSON.

Three kinds of input, for each way in:

- structured messages, valid-ish: the fields pdp reads, each drawn from values a real
  caller sends (the ai-workspace example's users, groups and applications, so some calls
  are allowed), values at the edges (blank, huge, control characters, zone-id IPv6, NaN
  and Infinity, out-of-range times, unknown enum numbers) and anything at all;
- the same messages as bytes with protobuf's own oddities: a field sent twice (the bytes
  of a second message appended: scalars last-wins, lists concatenated) and fields pdp
  does not know;
- raw bytes: a message's encoding mutated (bytes flipped, inserted, deleted, cut,
  duplicated), or no message at all.

A CheckRequest is drawn with a known answer to "does it name a subject and a target?"
(`Drawn.complete`): when not, pdp must never allow it. For Evaluate the test reads the
answer from the bytes themselves, as pdp must.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from hypothesis import strategies as st

from pdp.gateway.envoy import auth
from pdp.v1 import pdp_pb2 as pb

TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"  # examples/gateway-config.yaml's
ADA = "0a0da000-0000-4000-8000-00000000ada1"
USERS = ("ada@contoso.example", ADA, "U-1")
GROUPS = tuple(f"6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e0{n}" for n in (1, 2, 3))
APPS = tuple(f"8a4f0c1e-2d3b-4c5a-9e7f-00000000{tail}" for tail in ("de01", "f001", "f002"))
PIPELINE = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
HOSTS = ("dev.workspace.contoso.example", "workspace.contoso.example", "a.models.contoso.example")
USER_ACTIONS = ("urn:user:registersecurityinfo", "urn:user:registerdevice")
METHODS = ("password", "fido2", "microsoftAuthenticatorPush", "sms", "windowsHelloForBusiness")
IPS = (
    "203.0.113.25",
    "192.0.2.200",
    "10.0.0.5",
    "2001:db8::7",
    "::ffff:203.0.113.10",
    "::1.2.3.4",
    "fe80::1%eth0",
    "fe80::1%" + "z" * 1000,
    "1.2.3",
    "256.0.0.1",
    " 198.51.100.7 ",
    "",
)
SIGNAL_HEADERS = (
    "x-request-id",
    "x-device-id",
    "x-device-compliant",
    "x-device-trust-type",
    "x-sign-in-risk",
    "authorization",
    "cookie",
)
ID_CLAIMS = frozenset({"oid", "sub", "azp", "appid"})
BIG = 1 << 20

# Text of every kind, weighted to the edges: empty, blank, control characters, non-BMP;
# now and then past pdp's 1,024-character limit, rarely a megabyte (slow to send, and past
# the 1 MiB message limit once there are a few).
edge_text = st.sampled_from(range(400)).flatmap(  # sampled_from draws about uniformly
    lambda n: (
        st.just("x" * BIG)
        if n == 399
        else st.text(min_size=1, max_size=4).map(lambda s: s * (1100 // len(s)))
        if n >= 380
        else st.one_of(
            st.sampled_from(
                ("", " ", "\t\n", "\x00", "\u2003", "\u2028", "\x85", "a,b", "é" * 3, "\U0001f600")
            ),
            st.text(max_size=40),
        )
    )
)
ids = st.one_of(edge_text, st.sampled_from(USERS + GROUPS + APPS + (PIPELINE,)))
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from((math.nan, math.inf, -math.inf, -0.0, 48.85, 2.35, 90.0, 180.0, 1e308)),
)
enums = st.one_of(st.integers(0, 5), st.integers(-(2**31), 2**31 - 1))
seconds = st.one_of(st.integers(1_700_000_000, 1_900_000_000), st.integers(-(2**63), 2**63 - 1))
nanos = st.one_of(st.just(0), st.integers(-(2**31), 2**31 - 1))


@st.composite
def evaluate_requests(draw: st.DrawFn) -> pb.EvaluateRequest:
    """A structured EvaluateRequest: tidy (valid values, so it reaches a decision) or wild."""
    if draw(st.booleans()):
        return draw(_wild_evaluate_requests())
    return draw(_tidy_evaluate_requests())


@st.composite
def _tidy_evaluate_requests(draw: st.DrawFn) -> pb.EvaluateRequest:
    """Valid values from the example's world; subject and target present, blank or absent."""
    request = pb.EvaluateRequest(request_id=draw(st.uuids()).hex)
    request.time.seconds = draw(st.integers(1_790_000_000, 1_800_000_000))
    who = draw(st.sampled_from(("user", "principal", "none", "blank")))
    if who == "user":
        request.subject.user_id = draw(st.sampled_from(USERS))
        request.subject.group_ids.extend(draw(st.lists(st.sampled_from(GROUPS), max_size=2)))
    elif who == "principal":
        request.subject.service_principal_id = PIPELINE
    elif who == "blank":
        request.subject.user_id = draw(st.sampled_from((" ", "\t", "\u2003", "\n")))
    what = draw(st.sampled_from(("app", "action", "contexts", "none", "blank")))
    if what == "app":
        request.target.application_id = draw(st.sampled_from(APPS))
    elif what == "action":
        request.target.user_action = draw(st.sampled_from(USER_ACTIONS))
    elif what == "contexts":
        request.target.authentication_contexts.append(draw(st.sampled_from(("c1", "c2"))))
    elif what == "blank":
        request.target.application_id = " "
        request.target.authentication_contexts.extend(["", "  "])
    request.network.ip_address = draw(st.sampled_from(IPS[:6]))
    request.device.device_id = "laptop-0042"
    request.device.platform = draw(st.integers(0, 6))  # type: ignore[assignment]
    request.device.compliant = draw(st.booleans())
    request.device.trust_type = draw(st.integers(0, 3))  # type: ignore[assignment]
    request.client_app_type = draw(st.integers(0, 4))  # type: ignore[assignment]
    request.authentication.methods.extend(draw(st.lists(st.sampled_from(METHODS), max_size=3)))
    request.risk.sign_in = draw(st.integers(0, 4))  # type: ignore[assignment]
    request.explain = draw(st.booleans())
    return request


@st.composite
def _wild_evaluate_requests(draw: st.DrawFn) -> pb.EvaluateRequest:
    """Any field set or not, to ordinary or edge values."""
    request = pb.EvaluateRequest()
    if draw(st.booleans()):
        request.request_id = draw(st.one_of(edge_text, st.uuids().map(str)))
    if draw(st.booleans()):
        request.time.seconds = draw(seconds)
        request.time.nanos = draw(nanos)
    subject = request.subject
    who = draw(st.sampled_from(("user", "principal", "both", "none", "blank")))
    if who in ("user", "both"):
        subject.user_id = draw(ids)
        subject.group_ids.extend(draw(st.lists(ids, max_size=5)))
        subject.role_ids.extend(draw(st.lists(edge_text, max_size=2)))
        subject.guest = draw(st.booleans())
        if draw(st.booleans()):
            subject.guest_type = draw(st.one_of(edge_text, st.just("b2bCollaborationGuest")))
            subject.home_tenant_id = draw(edge_text)
    if who in ("principal", "both"):
        subject.service_principal_id = draw(st.one_of(ids, st.just(PIPELINE)))
    if who == "blank":
        subject.user_id = draw(st.sampled_from((" ", "\t", "\u2003", "\n")))
    target = request.target
    what = draw(st.sampled_from(("app", "action", "contexts", "none", "blank")))
    if what == "app":
        target.application_id = draw(st.one_of(st.sampled_from(APPS), ids))
    elif what == "action":
        target.user_action = draw(st.one_of(st.sampled_from(USER_ACTIONS), edge_text))
    elif what == "contexts":
        target.authentication_contexts.extend(draw(st.lists(edge_text, max_size=4)))
    elif what == "blank":
        target.application_id = " "
        target.authentication_contexts.extend(["", "  "])
    network = request.network
    network.ip_address = draw(st.one_of(st.sampled_from(IPS), edge_text))
    network.compliant_network = draw(st.booleans())
    if draw(st.booleans()):
        geo = network.geo
        geo.country = draw(st.one_of(st.sampled_from(("FR", "us", "ZZ", "")), edge_text))
        for name in ("latitude", "longitude", "accuracy_radius_km"):
            if draw(st.booleans()):
                setattr(geo, name, draw(floats))
    device = request.device
    device.device_id = draw(ids)
    device.platform = draw(enums)  # type: ignore[assignment]
    device.trust_type = draw(enums)  # type: ignore[assignment]
    device.compliant = draw(st.booleans())
    for key, value in draw(st.dictionaries(edge_text, edge_text, max_size=3)).items():
        device.attributes[key] = value
    request.client_app_type = draw(enums)  # type: ignore[assignment]
    authn = request.authentication
    authn.methods.extend(draw(st.lists(st.one_of(st.sampled_from(METHODS), edge_text), max_size=4)))
    authn.satisfied_controls.extend(draw(st.lists(edge_text, max_size=3)))
    if draw(st.booleans()):
        authn.authenticated_at.seconds = draw(seconds)
        authn.authenticated_at.nanos = draw(nanos)
    authn.flow = draw(enums)  # type: ignore[assignment]
    risk = request.risk
    for name in ("sign_in", "user", "service_principal", "insider"):
        setattr(risk, name, draw(enums))
    request.explain = draw(st.booleans())
    return request


@st.composite
def with_protobuf_oddities(draw: st.DrawFn, message: Any) -> bytes:
    """`message`'s bytes, perhaps with a second message appended and unknown fields."""
    data = message.SerializeToString()
    if draw(st.booleans()):  # fields sent twice: the second copy merges over the first
        data += (
            draw(evaluate_requests()).SerializeToString()
            if isinstance(message, pb.EvaluateRequest)
            else message.SerializeToString()
        )
    if draw(st.booleans()):  # fields pdp does not know: field numbers 11..2^29-1
        number = draw(st.integers(11, 2**29 - 1))
        kind = draw(st.sampled_from((0, 1, 2, 5)))
        data += _key(number, kind) + _value(kind, draw(st.binary(max_size=12)))
    return data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, kind: int) -> bytes:
    return _varint(number << 3 | kind)


def _value(kind: int, raw: bytes) -> bytes:
    if kind == 0:
        return _varint(int.from_bytes(raw[:8] or b"\0", "little"))
    if kind == 1:
        return raw[:8].ljust(8, b"\0")
    if kind == 5:
        return raw[:4].ljust(4, b"\0")
    return _varint(len(raw)) + raw


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with a few random mutations (or random bytes instead)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(("flip", "insert", "delete", "cut", "repeat")))
        at = draw(st.integers(0, len(out)))
        if op == "flip" and out:
            at = min(at, len(out) - 1)
            out[at] ^= draw(st.integers(1, 255))
        elif op == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del out[at : at + draw(st.integers(1, 8))]
        elif op == "cut":
            del out[at:]
        elif op == "repeat":
            out[at:at] = out[at : at + draw(st.integers(1, 16))]
    return bytes(out)


def evaluate_bytes() -> st.SearchStrategy[bytes]:
    """EvaluateRequest bytes: as a client writes them, with protobuf's oddities, or mutated."""
    plain = evaluate_requests().map(lambda request: request.SerializeToString())
    odd = evaluate_requests().flatmap(with_protobuf_oddities)
    return st.one_of(plain, odd, odd.flatmap(mutated))


@dataclass(frozen=True)
class Drawn:
    """A CheckRequest and whether it names both a subject and a target."""

    message: Any
    complete: bool


@st.composite
def check_requests(draw: st.DrawFn) -> Drawn:
    """An Envoy CheckRequest as the example gateway config reads it, subject and target known.

    Subject: the jwt_authn payload's oid/sub (or azp/appid with idtyp=app); left out, the
    payload has none of those claims (or blank ones), or there is no payload. Target: the
    route's pdp_application_id or a host the config maps; left out, neither (a host that
    is not contoso's).
    """
    has_subject, has_target = draw(st.booleans()), draw(st.booleans())
    # Half the requests are well formed but for what is under test (subject, target), so
    # that they reach the decision; the rest have anything anywhere.
    tidy = draw(st.booleans())
    if tidy:
        headers: dict[str, str] = {
            ":method": "GET",
            ":path": draw(st.sampled_from(("/notebooks/42", "/api/run"))),
            "user-agent": "Mozilla/5.0 (Macintosh)",
            "x-forwarded-for": draw(st.sampled_from(IPS[:5])),
            "x-device-id": "laptop-0042",
            "x-device-compliant": draw(st.sampled_from(("true", "false"))),
            "x-device-trust-type": "AzureAD",
        }
        if draw(st.booleans()):
            headers["x-sign-in-risk"] = draw(st.sampled_from(("none", "low", "high")))
        peer = "10.0.0.5"
    else:
        headers = {
            ":method": draw(st.sampled_from(("GET", "POST", "PURGE", ""))),
            ":path": draw(st.one_of(st.just("/notebooks/42"), st.just("/api/run"), edge_text)),
            "user-agent": draw(st.one_of(st.just("Mozilla/5.0 (Macintosh)"), edge_text)),
            "x-forwarded-for": draw(
                st.one_of(st.sampled_from(IPS), st.lists(st.sampled_from(IPS)).map(",".join))
            ),
        }
        for name in SIGNAL_HEADERS:
            if draw(st.booleans()):
                headers[name] = draw(
                    st.one_of(edge_text, st.sampled_from(("true", "AzureAD", "high")))
                )
        for name, value in draw(st.dictionaries(edge_text, edge_text, max_size=3)).items():
            headers.setdefault(name.lower(), value)
        peer = draw(st.one_of(st.sampled_from(("10.0.0.5", "192.0.2.9", "::1", "")), edge_text))
    extensions: dict[str, str] = {}
    if has_target:
        if draw(st.booleans()):
            extensions["pdp_application_id"] = draw(st.one_of(st.sampled_from(APPS), ids))
            if not extensions["pdp_application_id"].strip():
                extensions["pdp_application_id"] = APPS[0]
            host = draw(edge_text)
        else:
            host = draw(st.sampled_from(HOSTS))
    else:
        host = draw(st.one_of(st.sampled_from(("", "example.org", "[::1]:8443")), edge_text))
        if "contoso" in host.lower():
            host = "example.org"
    if not tidy and draw(st.booleans()):
        extensions["pdp_user_action"] = draw(edge_text)
    if not tidy and draw(st.booleans()):
        extensions["pdp_authentication_contexts"] = draw(edge_text)
    headers[":authority"] = host
    claims = draw(_claims(has_subject, tidy))
    attributes: dict[str, Any] = {
        "source": {"address": {"socketAddress": {"address": peer}}},
        "request": {"http": {"headers": headers, "host": host, "path": headers[":path"]}},
        "contextExtensions": extensions,
    }
    if claims is not None:
        attributes["metadataContext"] = {
            "filterMetadata": {"envoy.filters.http.jwt_authn": {"jwt_payload": claims}}
        }
    message = auth.CheckRequest()
    json_format.ParseDict({"attributes": attributes}, message)
    return Drawn(message, has_subject and has_target)


@st.composite
def _claims(draw: st.DrawFn, has_subject: bool, tidy: bool) -> dict[str, Any] | None:
    """A token payload naming a subject, or one that names none (or no payload)."""
    if not has_subject and draw(st.booleans()):
        return None
    claims: dict[str, Any] = {
        "tid": TENANT if tidy else draw(st.one_of(st.just(TENANT), edge_text))
    }
    if has_subject:
        claims["tid"] = TENANT
        if draw(st.booleans()):
            claims["oid"] = draw(st.one_of(st.sampled_from(USERS), ids))
            if not claims["oid"].strip():
                claims["oid"] = USERS[0]
            claims["groups"] = draw(st.lists(st.sampled_from(GROUPS), max_size=2))
        else:
            claims.update(idtyp="app", azp=PIPELINE)
    elif draw(st.booleans()):
        claims[draw(st.sampled_from(sorted(ID_CLAIMS)))] = draw(st.sampled_from(("", " ", "\t")))
    json_values = st.recursive(
        st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), edge_text),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(edge_text, inner, max_size=3),
        max_leaves=6,
    )
    if tidy:
        claims["amr"] = draw(st.lists(st.sampled_from(("pwd", "mfa", "fido", "wia")), max_size=2))
        if has_subject and "oid" in claims:
            claims["oid"] = ADA
        return claims
    for name in ("amr", "acrs", "auth_time", "roles", "acct", "idp", "groups", "idtyp"):
        if name not in claims and draw(st.integers(0, 3)) == 0:
            claims[name] = draw(json_values)
    if not has_subject and claims.get("idtyp") == "app":
        claims.pop("idtyp")
    for name, value in draw(st.dictionaries(edge_text, json_values, max_size=2)).items():
        if name not in ID_CLAIMS:
            claims.setdefault(name, value)
    return claims


def check_bytes() -> st.SearchStrategy[bytes]:
    """CheckRequest bytes: structured, or mutated."""
    encoded = check_requests().map(lambda drawn: drawn.message.SerializeToString())
    return st.one_of(encoded, encoded.flatmap(mutated))


@st.composite
def request_json(draw: st.DrawFn) -> str:
    """What `pdp evaluate --request` reads: proto3 JSON of a request, or JSON-ish text."""
    request = draw(evaluate_requests())
    try:
        document = json_format.MessageToDict(request)
    except (ValueError, json_format.Error):  # a time protobuf cannot write as JSON
        document = {}
    kind = draw(st.integers(0, 5))
    if kind == 0:  # unknown keys and wrong types
        document[draw(edge_text)] = draw(st.one_of(st.integers(), st.lists(st.integers())))
    elif kind == 1:  # numbers where JSON has none
        document.setdefault("network", {})["geo"] = {"latitude": draw(floats)}
        return json.dumps(document, allow_nan=True)
    elif kind == 2:  # the text mutated
        text = json.dumps(document)
        return draw(mutated(text.encode())).decode("utf-8", "replace")
    return json.dumps(document)
