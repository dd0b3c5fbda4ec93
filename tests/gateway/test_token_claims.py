"""Entra tokens of both versions, and claims they may lack: absent is unknown, never satisfied."""

from __future__ import annotations

from typing import Any

import pytest
from entra_tokens import app_claims, user_claims
from envoy_requests import DEV_HOST, ENGINEERS, OFFICE, envoy_check

from pdp.context import SignInContext
from pdp.errors import InvalidRequest
from pdp.gateway.check_in import to_context
from pdp.gateway.config import GatewayConfig, parse_gateway_config
from pdp.gateway.draft import SignInDraft
from pdp.gateway.identity import UNKNOWN_SIGN_IN_TIME

ADMIN_ROLE = "62e90394-69f5-4237-9190-012177145e10"


def mapped(claims: dict[str, Any], **jwt: Any) -> SignInContext:
    """The sign-in a request with this verified payload maps to (default config + `jwt`)."""
    config = parse_gateway_config({"application": {"default": "app"}, "identity": {"jwt": jwt}})
    request = envoy_check(host=DEV_HOST, client=OFFICE, claims=claims, envoy_hops=None)
    return to_context(request, config, SignInDraft("rid", 0.0)).context


def test_v1_user_token_maps_amr_to_methods_and_the_mfa_control() -> None:
    """v1.0 carries amr: pwd is a password, mfa the satisfied mfa control."""
    ctx = mapped(
        user_claims("1.0", groups=[ENGINEERS], amr=["pwd", "mfa"], auth_time=1_700_000_000)
    )
    assert (ctx.methods, ctx.satisfied_controls) == ({"password"}, {"mfa"})
    assert (ctx.group_ids, ctx.groups_unknown) == ({ENGINEERS}, False)
    assert ctx.authenticated_at == 1_700_000_000


def test_v2_user_token_has_no_amr_so_no_method_is_proven() -> None:
    """v2.0 has no amr (even when asked): nothing is satisfied by its absence."""
    ctx = mapped(user_claims("2.0", groups=[ENGINEERS], amr=["pwd", "mfa"], auth_time=1))
    assert (ctx.methods, ctx.satisfied_controls) == (frozenset(), frozenset())
    assert ctx.user_id


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_group_overage_leaves_membership_unknown(version: Any) -> None:
    """Above 200 groups the token points elsewhere (_claim_names): membership is unknown."""
    ctx = mapped(user_claims(version, overage=True, auth_time=1), groups_emitted=True)
    assert (ctx.group_ids, ctx.groups_unknown) == (frozenset(), True)


def test_hasgroups_is_an_overage_too() -> None:
    """Implicit flow's `hasgroups: true` stands in for groups that did not fit."""
    ctx = mapped(user_claims("2.0", auth_time=1, hasgroups=True), groups_emitted=True)
    assert ctx.groups_unknown


def test_group_overage_can_be_refused_instead() -> None:
    """groups_overage: deny refuses the token, naming the claim."""
    with pytest.raises(InvalidRequest, match=r"jwt_payload\.groups: group overage"):
        mapped(user_claims("2.0", overage=True, auth_time=1), groups_overage="deny")


@pytest.mark.parametrize(
    ("emitted", "unknown"),
    [(False, True), (True, False)],
)
def test_absent_membership_claims_are_unknown_unless_the_registration_emits_them(
    emitted: bool, unknown: bool
) -> None:
    """No groups / wids claim: unknown, unless the config says the app registration emits them."""
    ctx = mapped(user_claims("2.0", auth_time=1), groups_emitted=emitted, roles_emitted=emitted)
    assert (ctx.groups_unknown, ctx.roles_unknown) == (unknown, unknown)
    assert (ctx.group_ids, ctx.role_ids) == (frozenset(), frozenset())


def test_listed_roles_are_known() -> None:
    """A wids claim lists the directory roles: known, whatever roles_emitted says."""
    ctx = mapped(user_claims("1.0", wids=[ADMIN_ROLE], auth_time=1))
    assert (ctx.role_ids, ctx.roles_unknown) == ({ADMIN_ROLE}, False)


def test_a_user_token_without_auth_time_signed_in_at_the_epoch() -> None:
    """Unknown sign-in time counts as long ago: every sign-in frequency is due."""
    ctx = mapped(user_claims("2.0", groups=[ENGINEERS]))
    assert ctx.authenticated_at == UNKNOWN_SIGN_IN_TIME == 0.0


def test_required_user_claims_refuse_a_token_without_them() -> None:
    """required_user_claims: [auth_time] refuses a user token without the optional claim."""
    with pytest.raises(InvalidRequest, match=r"jwt_payload\.auth_time: the user token lacks"):
        mapped(user_claims("2.0", groups=[ENGINEERS]), required_user_claims=["auth_time"])
    ctx = mapped(user_claims("2.0", auth_time=5), required_user_claims=["auth_time"])
    assert ctx.authenticated_at == 5


@pytest.mark.parametrize("version", ["1.0", "2.0"])
@pytest.mark.parametrize("idtyp", [True, False])
def test_app_only_tokens_are_service_principals_with_or_without_idtyp(
    version: Any, idtyp: bool
) -> None:
    """idtyp: app, or (without the optional claim) no scp: the client app's service principal."""
    claims = app_claims(version, app_id="5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001", idtyp=idtyp)
    ctx = mapped(claims, required_user_claims=["auth_time"])  # app tokens have no auth_time
    assert ctx.service_principal_id == "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
    assert (ctx.user_id, ctx.authenticated_at, ctx.groups_unknown) == ("", None, False)


def test_a_user_token_with_idtyp_user_is_a_user_even_without_scp() -> None:
    """idtyp, when present, decides; scp is the fallback only."""
    claims = user_claims("2.0", idtyp=True, auth_time=1)
    del claims["scp"]
    assert mapped(claims).user_id == claims["oid"]


def test_the_example_config_maps_both_versions_of_an_engineer_token(
    config: GatewayConfig,
) -> None:
    """The shipped example: groups and wids emitted, auth_time required, both versions read."""
    for version in ("1.0", "2.0"):
        request = envoy_check(
            host=DEV_HOST,
            client=OFFICE,
            claims=user_claims(version, groups=[ENGINEERS], amr=["pwd"], auth_time=1),
        )
        ctx = to_context(request, config, SignInDraft("rid", 0.0)).context
        assert (ctx.groups_unknown, ctx.roles_unknown) == (False, False)
        assert ctx.methods == ({"password"} if version == "1.0" else frozenset())
