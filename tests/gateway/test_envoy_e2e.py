"""The shipped deploy/envoy/envoy.yaml in a real Envoy, in front of a real `pdp serve`.

One stack for the module (envoy_e2e.py says what is substituted): the test CA's JWKS
server holds the key the tokens are signed with, pdp serves the ai-workspace example with
examples/gateway-config.yaml and writes its audit log, and a throwaway app stands behind
Envoy. Requests are plain HTTP, sent as the load balancer in front of Envoy sends them
(from 127.0.0.2: it appends the client's address to x-forwarded-for and sets x-request-id).
Each test checks what the client got, what the app got, and that Envoy's access log and
pdp's audit log tell the same story; the last two check every request of the module that
way and then stop pdp.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e.pdp_process import PdpProcess
from entra_tokens import (
    OTHER_TENANT,
    CertificateAuthority,
    JwksServer,
    SigningKey,
    TokenFactory,
    jwks_certificate,
    user_claims,
)
from envoy_e2e import (
    DIRECT,
    LB,
    POLICIES,
    SAME_HOST_LB,
    EnvoyProcess,
    Ports,
    Response,
    Upstream,
    audit_record,
    local_config,
    local_gateway_config,
    read_audit,
    send,
    wait_for,
)

PROD = "workspace.contoso.example"
DEV = "dev.workspace.contoso.example"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
ADA = "0a0da000-0000-4000-8000-00000000ada1"
PIPELINE = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
OFFICE, HOME, RUNNER = "203.0.113.25", "192.0.2.200", "192.0.2.10"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
POSTURE = {
    "x-device-id": "laptop-0042",
    "x-device-compliant": "true",
    "x-device-trust-type": "AzureAD",
}
MFA_CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", acr_values="c1"'
)


@dataclass
class Stack:
    """Envoy, pdp, the JWKS server and the app, running; and the requests sent so far."""

    envoy: EnvoyProcess
    pdp: PdpProcess
    app: Upstream
    tokens: TokenFactory
    audit: Path
    port: int
    sent: list[str] = field(default_factory=list)

    def get(
        self,
        path: str = "/notebooks/42",
        host: str = PROD,
        *,
        token: str | None = None,
        client: str | None = OFFICE,
        forwarded: str | None = None,
        source: str = LB,
        headers: dict[str, str] | None = None,
    ) -> tuple[Response, str]:
        """One request through the LB (or from `source`); the response and its request id.

        The LB appends `client` to the x-forwarded-for the client sent (`forwarded`), sets
        x-request-id, and the posture proxy the device headers.
        """
        rid = f"lb-{uuid.uuid4()}"
        xff = ", ".join(e for e in (forwarded, client) if e)
        sent = {"user-agent": BROWSER, "cookie": "workspace_session=7b1d", "x-request-id": rid}
        sent |= POSTURE
        if xff:
            sent["x-forwarded-for"] = xff
        if token is not None:
            sent["authorization"] = f"Bearer {token}"
        sent |= headers or {}
        response = send(self.port, path, host, sent, source=source)
        self.sent.append(rid)
        return response, rid

    def user(self, version: Any = "1.0", *, ago_s: int = 1800, **claims: Any) -> str:
        """Ada's token: an ML engineer who signed in `ago_s` ago with password and MFA."""
        claims.setdefault("groups", [ENGINEERS])
        claims.setdefault("amr", ["pwd", "mfa"])
        claims.setdefault("auth_time", int(time.time()) - ago_s)
        return self.tokens.user(version, oid=ADA, **claims)

    def decided(self, rid: str, decision: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The access log and audit records of a request pdp decided; both say `decision`."""
        log = self.envoy.log_record(rid)
        record = audit_record(self.audit, rid)
        assert (log["pdp_request_id"], record["id"]) == (rid, rid)  # the LB's id, kept
        assert (log["pdp_decision"], record["decision"]) == (decision, decision)
        assert log["pdp_policy_version"] == record["policyVersion"]
        assert int(log["ext_authz_us"]) > 0  # ext_authz's latency, on every answer
        return log, record

    def not_decided(self, rid: str) -> dict[str, Any]:
        """The access log record of a request pdp never decided (nor audited)."""
        log = self.envoy.log_record(rid)
        assert log["pdp_decision"] is None
        assert all(r["id"] != rid for r in read_audit(self.audit))
        return log


def results(record: dict[str, Any]) -> dict[str, str]:
    """An audit record's per-policy results, by the policy's "AI01"-style prefix."""
    return {p["displayName"][:4]: p["result"] for p in record["appliedConditionalAccessPolicies"]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole stack, started once for the module."""
    directory = tmp_path_factory.mktemp("envoy-e2e")
    ca = CertificateAuthority()
    tokens = TokenFactory(SigningKey())
    gateway = directory / "gateway-config.yaml"
    gateway.write_text(local_gateway_config(), encoding="utf-8")
    audit = directory / "audit.jsonl"
    app = Upstream()
    try:
        with (
            JwksServer(jwks_certificate(ca), [tokens.key], directory) as jwks,
            PdpProcess(
                POLICIES, "--gateway-config", str(gateway), "--audit-log", str(audit)
            ) as pdp,
        ):
            pdp.wait_ready()
            ports = Ports.free(pdp=pdp.port, upstream=app.port, jwks=jwks.port)
            config = local_config(ports, ca.write(directory))
            with EnvoyProcess(config, directory, ports.admin) as envoy:
                envoy.wait_ready()
                yield Stack(envoy, pdp, app, tokens, audit, ports.listener)
    finally:
        app.close()


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_allowed_request_reaches_the_app_with_pdp_headers(stack: Stack, version: Any) -> None:
    """Office, compliant laptop, MFA (v1.0 amr; v2.0 the c1 context): 200 with pdp's headers."""
    proof = {"amr": ["pwd", "mfa"]} if version == "1.0" else {"acrs": ["c1"]}
    forged = {"x-pdp-decision": "allow-forged", "x-pdp-request-id": "forged"}
    response, rid = stack.get(token=stack.user(version, **proof), headers=forged)
    assert response.status == 200
    upstream = response.upstream_headers
    assert upstream["x-pdp-decision"] == "allow"
    assert upstream["x-pdp-request-id"] == rid == upstream["x-request-id"]
    assert upstream["x-pdp-session-max-age"] == "14400"
    log, record = stack.decided(rid, "allow")
    assert (log["status"], log["client"], log["peer"]) == (200, OFFICE, LB)
    assert (record["userId"], record["ipAddress"]) == (ADA, OFFICE)


def test_mfa_needed_gets_the_rfc_9470_challenge(stack: Stack) -> None:
    """Dev workspace from home with a password only: 401 and the step-up challenge."""
    response, rid = stack.get(host=DEV, client=HOME, token=stack.user(amr=["pwd"]))
    assert response.status == 401
    assert response.headers["www-authenticate"] == MFA_CHALLENGE
    assert response.json()["requirements"] == [{"any_of": ["mfa"]}]
    assert response.headers["x-pdp-request-id"] == rid
    log, _ = stack.decided(rid, "challenge")
    assert log["pdp_requirements"] == ["mfa"]


def test_a_v2_token_without_amr_never_passes_for_mfa(stack: Stack) -> None:
    """v2.0 tokens carry no amr: MFA is asked for until the token holds the c1 context."""
    response, rid = stack.get(token=stack.user("2.0"))
    assert (response.status, response.headers["www-authenticate"]) == (401, MFA_CHALLENGE)
    stack.decided(rid, "challenge")


@pytest.mark.parametrize("proof", [{"acrs": ["c1"]}, {}])
def test_a_group_overage_token_is_not_allowed_past_the_groups_policy(
    stack: Stack, proof: dict[str, Any]
) -> None:
    """No groups in the token (overage): AI01's MFA still applies; c1 satisfies it."""
    token = stack.user("2.0", groups=None, overage=True, **proof)
    response, rid = stack.get(token=token)
    assert response.status == (200 if proof else 401)
    _, record = stack.decided(rid, "allow" if proof else "challenge")
    if not proof:
        assert results(record)["AI01"] == "failure"


def test_sign_in_frequency_due_gets_max_age(stack: Stack) -> None:
    """Signed in 5 hours ago, production's frequency is 4 hours: 401 asking for max_age."""
    response, rid = stack.get(token=stack.user(ago_s=5 * 3600))
    assert response.status == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="More recent authentication is required", max_age="14400"'
    )
    stack.decided(rid, "challenge")


def test_a_user_token_without_auth_time_is_refused(stack: Stack) -> None:
    """The example requires auth_time: without it, 403 rather than a re-sign-in loop."""
    token = stack.tokens.mint(user_claims("1.0", oid=ADA, groups=[ENGINEERS], amr=["pwd", "mfa"]))
    response, rid = stack.get(token=token)
    assert (response.status, response.json()["error"]) == (403, "invalid_argument")
    log = stack.envoy.log_record(rid)
    assert (log["pdp_decision"], log["pdp_error"]) == ("deny", "invalid_argument")
    assert audit_record(stack.audit, rid)["status"]["failureReason"] == "invalid_argument"
    stack.pdp.wait_for("check_rejected", request_id=rid)


def test_blocked_request_gets_403_with_a_json_body(stack: Stack) -> None:
    """Production from home: AI04 blocks; 403 with messages and the request id."""
    response, rid = stack.get(client=HOME, token=stack.user())
    assert response.status == 403
    body = response.json()
    assert (body["decision"], body["request_id"]) == ("deny", rid)
    assert body["messages"][0].startswith("Your organization's Conditional Access policy blocks")
    _, record = stack.decided(rid, "deny")
    assert record["ipAddress"] == HOME


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("idtyp", [True, False])
def test_service_principal_inside_its_runners_range_is_allowed(
    stack: Stack, version: Any, idtyp: bool
) -> None:
    """The pipeline's app-only token from a runner (with or without idtyp): 200."""
    token = stack.tokens.app(version, app_id=PIPELINE, idtyp=idtyp)
    response, rid = stack.get(host=DEV, client=RUNNER, token=token)
    assert response.status == 200
    _, record = stack.decided(rid, "allow")
    assert (record["servicePrincipalId"], record["ipAddress"]) == (PIPELINE, RUNNER)


@pytest.mark.parametrize("source", [LB, SAME_HOST_LB])
def test_service_principal_outside_its_runners_range_is_blocked(stack: Stack, source: str) -> None:
    """From home AI09 blocks, also through an LB at 127.0.0.1.

    Envoy then appends its host's address, which pdp must not take for the client.
    """
    token = stack.tokens.app("1.0", app_id=PIPELINE)
    response, rid = stack.get(host=DEV, client=HOME, token=token, source=source)
    assert response.status == 403
    log, record = stack.decided(rid, "deny")
    assert (record["ipAddress"], log["client"], log["peer"]) == (HOME, HOME, source)


def test_same_host_load_balancer_passes_the_client_address(stack: Stack) -> None:
    """An LB on Envoy's host (127.0.0.1): the office client is still the office client."""
    response, rid = stack.get(token=stack.user(), source=SAME_HOST_LB)
    assert response.status == 200
    assert response.upstream_headers["x-forwarded-for"].startswith(f"{OFFICE},")
    _, record = stack.decided(rid, "allow")
    assert record["ipAddress"] == OFFICE


def test_spoofed_forwarded_for_changes_nothing(stack: Stack) -> None:
    """A client claiming the office in its own XFF and x-envoy-external-address: still home."""
    response, rid = stack.get(
        client=HOME,
        forwarded=OFFICE,
        token=stack.user(),
        headers={"x-envoy-external-address": OFFICE},
    )
    assert response.status == 403
    _, record = stack.decided(rid, "deny")
    assert record["ipAddress"] == HOME


def test_a_client_bypassing_the_load_balancer_is_its_own_address(stack: Stack) -> None:
    """A direct connection from outside trusted_proxies: its XFF is not read at all."""
    response, rid = stack.get(client=OFFICE, token=stack.user(), source=DIRECT)
    assert response.status == 403
    _, record = stack.decided(rid, "deny")
    assert record["ipAddress"] == DIRECT


def test_a_token_of_another_tenant_never_reaches_pdp(stack: Stack) -> None:
    """Another tenant's issuer: jwt_authn refuses it (401); pdp and the app see nothing."""
    token = stack.user(tenant=OTHER_TENANT)
    received = len(stack.app.received)
    response, rid = stack.get(token=token)
    assert response.status == 401
    log = stack.not_decided(rid)
    assert log["details"].startswith("jwt_authn_access_denied")
    assert len(stack.app.received) == received


def test_a_foreign_tid_under_our_issuer_is_refused_by_pdp(stack: Stack) -> None:
    """Defence in depth: a signed token whose tid is not ours is refused by pdp too (403)."""
    claims = user_claims("1.0", oid=ADA, groups=[ENGINEERS], amr=["pwd"], auth_time=1)
    claims["tid"] = OTHER_TENANT
    response, rid = stack.get(token=stack.tokens.mint(claims))
    assert (response.status, response.json()["error"]) == (403, "invalid_argument")
    assert stack.envoy.log_record(rid)["pdp_error"] == "invalid_argument"
    assert audit_record(stack.audit, rid)["status"]["failureReason"] == "invalid_argument"


@pytest.mark.parametrize("bearer", [None, "not.a.jwt"])
def test_no_valid_token_is_401_from_jwt_authn(stack: Stack, bearer: str | None) -> None:
    """Without a token (or with garbage) jwt_authn answers 401; pdp is never asked."""
    response, rid = stack.get(token=bearer)
    assert response.status == 401
    assert stack.not_decided(rid)["details"].startswith("jwt_authn_access_denied")


def test_admin_route_asks_for_authentication_context_c7(stack: Stack) -> None:
    """/admin/ needs c7 (AI12: phishing-resistant MFA); other pages do not.

    Password + MFA is challenged for c7, a token holding c7 gets in, and the first token
    still reaches other pages.
    """
    plain = stack.user()
    response, rid = stack.get("/admin/users", token=plain)
    assert response.status == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", acr_values="c7"'
    )
    _, record = stack.decided(rid, "challenge")
    assert results(record)["AI12"] == "failure"
    stepped_up, rid = stack.get("/admin/users", token=stack.user(acrs=["c7"]))
    assert stepped_up.status == 200
    stack.decided(rid, "allow")
    elsewhere, _ = stack.get("/notebooks/42", token=plain)
    assert elsewhere.status == 200


@pytest.mark.parametrize("host", [PROD, DEV])
def test_healthz_is_public_and_never_asks_pdp(stack: Stack, host: str) -> None:
    """/healthz on either host: no token needed, ext_authz disabled, answered by the app."""
    response, rid = stack.get("/healthz", host=host, token=None)
    assert response.status == 200
    assert response.upstream["path"] == "/healthz"
    assert "x-pdp-decision" not in response.upstream_headers
    stack.not_decided(rid)


def test_a_path_that_only_starts_with_healthz_needs_a_token(stack: Stack) -> None:
    """The health route is exactly /healthz: /healthz-admin is not public."""
    response, rid = stack.get("/healthz-admin", token=None)
    assert response.status == 401
    stack.not_decided(rid)


def test_access_log_and_audit_log_agree_for_every_request(stack: Stack) -> None:
    """Every request of this module: the two logs name the same decided requests.

    pdp audited exactly those the access log says it decided, with the same decision and
    client address, and the answer's status follows from the decision.
    """
    expected_status = {"allow": 200, "challenge": 401, "deny": 403}
    logs = {r["request_id"]: r for r in stack.envoy.access_log()}
    assert set(stack.sent) <= set(logs)
    decided = {rid for rid in stack.sent if logs[rid]["pdp_decision"] is not None}
    audited = wait_for(
        lambda: (
            (found := {r["id"]: r for r in read_audit(stack.audit)}).keys() >= decided and found
        ),
        10,
        "audit records of every decided request",
    )
    assert set(audited) & set(stack.sent) == decided
    for rid in decided:
        log, record = logs[rid], audited[rid]
        if log["pdp_error"]:
            assert record["status"]["failureReason"] == log["pdp_error"]
            assert log["status"] == 403
        else:
            assert record["decision"] == log["pdp_decision"]
            assert log["status"] == expected_status[log["pdp_decision"]]
        # Envoy derives its client from XFF whoever connects; pdp only from trusted proxies.
        trusted = log["peer"] in (LB, SAME_HOST_LB)
        assert record["ipAddress"] == (log["client"] if trusted else log["peer"])


def test_pdp_stopped_fails_closed(stack: Stack) -> None:
    """With pdp gone, Envoy denies (failure_mode_allow: false): 403, the app sees nothing.

    Runs last: it stops the module's pdp.
    """
    assert stack.pdp.stop() == 0
    received = len(stack.app.received)
    response, rid = stack.get(token=stack.user())
    assert response.status == 403
    assert len(stack.app.received) == received
    log = stack.not_decided(rid)
    assert (log["flags"], log["details"]) == ("UAEX", "ext_authz_error")
