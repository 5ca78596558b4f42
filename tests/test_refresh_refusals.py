"""A refresh that Logto would refuse must not cost the session.

Logto consumes a rotating refresh token before it checks ``resource``, so what can be checked
locally is refused before any request, and after a refusal a consumed refresh token is never
presented again. Organization membership is checked by Logto before it rotates anything, and may
have changed since the ID token was issued: it is Logto's to decide.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Optional

import pytest

from conftest import ClientFactory, run, sign_in
from logto_rs import (
    LogtoClient,
    LogtoConfigError,
    LogtoInvalidGrantError,
    LogtoOAuthError,
    MemoryStorage,
    UserInfoScope,
)
from provider_harness import Provider, token_hash

API = "https://api.example.com"
SHORT = "https://short.example.com"
ORGS = "urn:logto:scope:organizations"


def refreshes(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="refresh_token")


def presented(provider: Provider) -> list[str]:
    return [entry["form"]["refresh_token"] for entry in refreshes(provider)]


def signed_in(
    make_client: ClientFactory, app: str, secret: Optional[str]
) -> tuple[LogtoClient, MemoryStorage]:
    storage = MemoryStorage()
    client = make_client(
        storage,
        appId=app,
        appSecret=secret,
        scopes=["read:products", ORGS, UserInfoScope.organization_roles],
        resources=[API],
    )
    run(sign_in(client))
    return client, storage


def set_memberships(storage: MemoryStorage, organizations: list[str]) -> None:
    """Make the stored ID token's ``organizations`` claim list ``organizations``: the user's
    memberships at sign-in, which may have changed since; only Logto knows the current ones."""
    header, payload, signature = storage._values["idToken"].split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["organizations"] = organizations
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    storage._values["idToken"] = f"{header}.{encoded}.{signature}"


def test_a_resource_missing_from_the_configuration_is_refused_before_any_request(
    provider: Provider, make_client: ClientFactory
) -> None:
    client, storage = signed_in(make_client, "web-app", "web-app-secret")
    before = dict(storage._values)
    provider.reset()
    with pytest.raises(LogtoConfigError) as caught:
        run(client.getAccessToken("https://typo.example.com"))
    assert "LogtoConfig.resources" in str(caught.value)
    assert refreshes(provider) == []
    assert storage._values == before
    assert run(client.getAccessToken(API))  # the session still works


def test_an_organization_joined_after_sign_in_is_asked_of_logto_and_granted(
    provider: Provider, make_client: ClientFactory
) -> None:
    client, storage = signed_in(make_client, "spa-app", None)
    set_memberships(storage, [])  # the ID token predates the membership
    provider.reset()
    token = run(client.getOrganizationToken("org-acme"))
    assert token
    assert len(refreshes(provider)) == 1
    assert run(client.getOrganizationTokenClaims("org-acme")).aud == "urn:logto:organization:org-acme"


def test_without_the_organizations_scope_an_organization_token_is_refused_locally(
    provider: Provider, make_client: ClientFactory
) -> None:
    storage = MemoryStorage()
    client = make_client(storage, resources=[API])
    run(sign_in(client))
    provider.reset()
    with pytest.raises(LogtoConfigError):
        run(client.getOrganizationToken("org-acme"))
    assert refreshes(provider) == []


def test_a_public_client_whose_token_a_refusal_consumed_signs_in_again_and_never_reuses_it(
    provider: Provider, make_client: ClientFactory
) -> None:
    _, storage = signed_in(make_client, "spa-app", None)
    # The configuration gained a resource after the user signed in: Logto rotates the public
    # client's refresh token, then refuses the resource the grant does not hold.
    client = make_client(storage, appId="spa-app", appSecret=None, resources=[API, SHORT])
    consumed = storage._values["refreshToken"]
    provider.reset()
    with pytest.raises(LogtoInvalidGrantError) as caught:
        run(client.getAccessToken(SHORT))
    assert caught.value.error == "invalid_target"
    # The refresh token is gone with the session: it is never presented again.
    assert not client.isAuthenticated() and client.getRefreshToken() is None
    assert run(client.getAccessToken(API)) is None
    assert presented(provider) == [token_hash(consumed)]


def test_a_membership_refusal_costs_a_public_client_nothing(
    provider: Provider, make_client: ClientFactory
) -> None:
    client, _ = signed_in(make_client, "spa-app", None)
    provider.reset()
    with pytest.raises(LogtoOAuthError) as caught:
        run(client.getOrganizationToken("org-initech"))
    assert not isinstance(caught.value, LogtoInvalidGrantError)
    assert (caught.value.error, caught.value.status) == ("access_denied", 403)
    assert len(refreshes(provider)) == 1  # Logto decides
    # Logto checks membership before it rotates: the session and its token still work.
    assert client.isAuthenticated()
    assert run(client.getAccessToken(API))
    assert run(client.getOrganizationToken("org-acme"))


def test_a_confidential_client_keeps_its_session_after_a_refusal(
    provider: Provider, make_client: ClientFactory
) -> None:
    client, _ = signed_in(make_client, "web-no-rotate", "web-no-rotate-secret")
    with pytest.raises(LogtoOAuthError) as caught:
        run(client.getOrganizationToken("org-initech"))
    assert not isinstance(caught.value, LogtoInvalidGrantError)
    assert caught.value.error == "access_denied"
    assert client.isAuthenticated()
    assert run(client.getAccessToken(API))  # the refresh token still works


def test_other_sessions_are_untouched_by_a_refusal(provider: Provider, make_client: ClientFactory) -> None:
    _, refused_storage = signed_in(make_client, "spa-app", None)
    other, _ = signed_in(make_client, "spa-app", None)
    refused = make_client(refused_storage, appId="spa-app", appSecret=None, resources=[API, SHORT])
    with pytest.raises(LogtoInvalidGrantError):
        run(refused.getAccessToken(SHORT))
    assert run(other.getAccessToken(API))
    assert run(other.getOrganizationToken("org-acme"))
