"""The official ``logto`` 0.2.1 package's names, and its OidcCore over a signed-in client."""

from __future__ import annotations

import pytest

import logto_rs
from conftest import ClientFactory, run, sign_in
from logto_rs import AccessToken, LogtoResponseError, TokenResponse, utilities
from logto_rs.OidcCore import OidcCore, OidcProviderMetadata
from provider_harness import Provider

# dir(logto) of the official package 0.2.1, public names.
OFFICIAL_NAMES = [
    "AccessToken",
    "AccessTokenClaims",
    "IdTokenClaims",
    "InteractionMode",
    "LogtoClient",
    "LogtoConfig",
    "LogtoException",
    "OidcCore",
    "OidcProviderMetadata",
    "PersistKey",
    "Scope",
    "Storage",
    "TokenResponse",
    "UserInfoResponse",
    "UserInfoScope",
    "models",
    "utilities",
]


def test_every_official_name_is_exported() -> None:
    assert [name for name in OFFICIAL_NAMES if not hasattr(logto_rs, name)] == []
    assert set(OFFICIAL_NAMES) - {"models"} <= set(logto_rs.__all__)


def test_oidc_core_is_a_module_as_in_the_official_package() -> None:
    # `from logto.OidcCore import OidcCore` ports as `from logto_rs.OidcCore import OidcCore`.
    assert logto_rs.OidcCore.OidcCore is OidcCore


def test_static_helpers() -> None:
    # RFC 7636 Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert OidcCore.generateCodeChallenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert len(OidcCore.generateState()) == 43 and OidcCore.generateState() != OidcCore.generateState()
    assert len(OidcCore.generateCodeVerifier()) == 43
    assert utilities.buildOrganizationUrn("org-acme") == "urn:logto:organization:org-acme"
    assert utilities.removeFalsyKeys({"a": "", "b": None, "c": "x"}) == {"c": "x"}
    assert utilities.urlsafeEncode(b"\xff\xfe") == "__4"
    with pytest.raises(LogtoResponseError):
        OidcCore.decodeIdToken("not-a-jwt")


def test_get_oidc_core_over_a_signed_in_client(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    run(sign_in(client))

    async def scenario() -> None:
        core = await client.getOidcCore()
        assert isinstance(core.metadata, OidcProviderMetadata)
        assert core.metadata.issuer == provider.issuer
        assert core.metadata.userinfo_endpoint == provider.userinfo_endpoint
        id_token = client.getIdToken()
        assert id_token is not None
        assert OidcCore.decodeIdToken(id_token).sub == client.getIdTokenClaims().sub == "user-alice"
        token = await client.getAccessToken("")
        assert token is not None
        assert (await core.fetchUserInfo(token)).sub == "user-alice"
        with pytest.raises(NotImplementedError, match="handleSignInCallback"):
            await core.fetchTokenByCode("web-app", None, "http://127.0.0.1/callback", "code", "verifier")
        with pytest.raises(NotImplementedError, match="getAccessToken"):
            await core.fetchTokenByRefreshToken("web-app", None, "refresh-token")
        with pytest.raises(NotImplementedError, match="handleSignInCallback"):
            core.verifyIdToken(id_token, "web-app")

    run(scenario())


def test_token_models_hide_tokens_from_repr() -> None:
    response = TokenResponse(
        access_token="secret-access", token_type="Bearer", expires_in=3600, id_token="x.y.z"
    )
    assert "secret-access" not in repr(response) and "x.y.z" not in repr(response)
    assert "secret-access" not in repr(AccessToken(token="secret-access", expiresAt=1))
