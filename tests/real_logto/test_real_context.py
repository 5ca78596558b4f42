"""getContext and postRedirectUri against the real Logto, for the `web` (confidential) and
`native` (public) apps: the provisioned resource and organization, a real sign-in."""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest

from conftest import (
    APPS,
    REDIRECT_URI,
    ClientFactory,
    CoreLog,
    RealLogto,
    experience_sign_in,
    jwt_parts,
    sign_in,
)
from logto_rs import LogtoContext, MemoryStorage

run = asyncio.run


@pytest.mark.parametrize("app", APPS)
def test_get_context_with_a_resource_an_organization_and_the_userinfo(
    logto: RealLogto, make_client: ClientFactory, core_log: Callable[[], CoreLog], app: str
) -> None:
    # The short-lived resource is left out: its tokens are always due for a refresh.
    client = make_client(app, resources=[logto.resource])
    assert run(client.getContext(access_tokens=True, organization_tokens=True)) == LogtoContext()
    run(sign_in(client, logto))

    log = core_log()
    context = run(client.getContext(fetch_user_info=True, access_tokens=True, organization_tokens=True))
    assert context.is_authenticated and context.claims is not None
    assert context.claims.sub == logto.user_id("alice")
    assert context.user_info is not None and context.user_info.sub == logto.user_id("alice")
    assert list(context.access_tokens) == [logto.resource]
    payload = jwt_parts(context.access_tokens[logto.resource])[1]
    assert payload["aud"] == logto.resource and "read:products" in payload["scope"].split()
    assert list(context.organization_tokens) == [logto.organization_id]
    organization = jwt_parts(context.organization_tokens[logto.organization_id])[1]
    assert organization["aud"] == f"urn:logto:organization:{logto.organization_id}"
    assert organization["sub"] == logto.user_id("alice")
    assert log.token_requests() == 2  # the resource's token and the organization's
    assert log.count("GET", "/oidc/me") == 1

    # Warm: the same tokens from the session, without a request.
    log = core_log()
    warm = client.blocking.getContext(access_tokens=True, organization_tokens=True)
    assert (warm.access_tokens, warm.organization_tokens) == (
        context.access_tokens,
        context.organization_tokens,
    )
    assert log.token_requests() == 0


@pytest.mark.parametrize("app", APPS)
def test_the_post_redirect_uri_comes_back_from_a_real_sign_in(
    logto: RealLogto, make_client: ClientFactory, app: str
) -> None:
    client = make_client(app, storage=MemoryStorage())
    url = run(client.signIn(REDIRECT_URI, postRedirectUri="/orders?page=2"))
    assert run(client.handleSignInCallback(experience_sign_in(url, logto))) == "/orders?page=2"
    assert client.getIdTokenClaims().sub == logto.user_id("alice")
    url = client.blocking.signIn(REDIRECT_URI)
    assert client.blocking.handleSignInCallback(experience_sign_in(url, logto)) is None
