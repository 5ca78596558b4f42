"""LogtoClient against the real Logto: the `web` app (confidential: Logto keeps its refresh
token) and the `native` app (public: a new refresh token at every refresh).

The web app's short-token tests need the SDK never to serve a remembered refresh result once its
token is due or after clearAccessToken (the web app's refresh token does not change, so a memory
keyed by it would). The resource tests need it to refuse a resource missing from
LogtoConfig.resources before any request, and to end a public client's session with
LogtoInvalidGrantError when Logto refused a refresh after rotating its token.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import (
    APPS,
    ORGANIZATIONS_SCOPE,
    POST_LOGOUT_URI,
    UNKNOWN_RESOURCE,
    ClientFactory,
    CoreLog,
    RealLogto,
    jwt_parts,
    refresh_raw,
    sign_in,
)
from logto_rs import (
    LogtoClient,
    LogtoConfigError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoOAuthError,
    MemoryStorage,
)

run = asyncio.run


def config_for_all(logto: RealLogto) -> list[str]:
    """The resources every client of this module is configured with."""
    return [logto.resource, logto.short_resource]


def claims(token: str) -> dict:
    return jwt_parts(token)[1]


# --- sign-in, claims, tokens, userinfo -----------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_sign_in_claims_tokens_and_userinfo(logto: RealLogto, make_client: ClientFactory, app: str) -> None:
    client = make_client(app)

    async def journey() -> None:
        assert not client.isAuthenticated()
        await sign_in(client, logto)
        assert client.isAuthenticated()

        id_claims = client.getIdTokenClaims()
        assert id_claims.sub == logto.user_id("alice")
        assert id_claims.iss == logto.issuer
        assert id_claims.aud == client.config.appId
        assert id_claims.model_dump()["username"] == "alice"
        assert logto.organization_id in (id_claims.model_dump().get("organizations") or [])

        api = await client.getAccessToken(logto.resource)
        assert api is not None
        header, payload = jwt_parts(api)
        assert header["typ"] == "at+jwt" and header["alg"] == "ES384"
        assert payload["aud"] == logto.resource and payload["sub"] == logto.user_id("alice")
        assert "read:products" in payload["scope"].split()
        verified = await client.getAccessTokenClaims(logto.resource, verify=True)
        assert verified.sub == logto.user_id("alice")

        org = await client.getOrganizationToken(logto.organization_id)
        assert org is not None
        assert claims(org)["aud"] == f"urn:logto:organization:{logto.organization_id}"
        assert claims(org)["scope"] == "read:members"
        org_claims = await client.getOrganizationTokenClaims(logto.organization_id, verify=True)
        assert org_claims.sub == logto.user_id("alice")

        scoped = await client.getAccessToken(logto.resource, logto.organization_id)
        assert scoped is not None and scoped != api
        assert claims(scoped)["aud"] == logto.resource
        assert claims(scoped)["organization_id"] == logto.organization_id
        assert "read:products" in claims(scoped)["scope"].split()

        info = await client.fetchUserInfo()
        assert info.sub == logto.user_id("alice")
        dumped = info.model_dump()
        assert dumped["username"] == "alice" and dumped["email"] == "alice@example.com"
        assert [o["id"] for o in dumped["organization_data"]] == [logto.organization_id]

    run(journey())


@pytest.mark.parametrize("app", APPS)
def test_refresh_token_rotation_follows_logto_policy(
    logto: RealLogto, make_client: ClientFactory, app: str
) -> None:
    """Logto keeps a confidential app's refresh token (until 70 % of its 14 days) and rotates a
    public app's at every refresh; the SDK stores whichever it gets."""
    client = make_client(app)

    async def journey() -> None:
        await sign_in(client, logto)
        first = client.getRefreshToken()
        await client.getAccessToken(logto.resource)
        second = client.getRefreshToken()
        await client.getOrganizationToken(logto.organization_id)
        third = client.getRefreshToken()
        if app == "web":
            assert first == second == third
        else:
            assert len({first, second, third}) == 3

    run(journey())


# --- expiry of the 10 s resource ----------------------------------------------------------------

MARGIN = 7  # whole seconds: a 10 s token is due for renewal 3 s after it was issued


def _renew_across_expiries(logto: RealLogto, make_client: ClientFactory, app: str, core_log) -> None:
    client = make_client(app, accessTokenMargin=MARGIN)

    async def journey() -> None:
        await sign_in(client, logto)
        seen: list[str] = []
        for _ in range(3):
            log: CoreLog = core_log()
            token = await client.getAccessToken(logto.short_resource)
            assert token is not None
            payload = claims(token)
            assert payload["aud"] == logto.short_resource
            assert payload["exp"] - payload["iat"] == logto.short_ttl
            # never an expired (or nearly expired) token: it has more than the margin left
            assert payload["exp"] - time.time() > MARGIN - 2
            assert token not in seen
            assert log.token_requests() == 1
            seen.append(token)
            # a second call before it is due is served from the cache
            log = core_log()
            assert await client.getAccessToken(logto.short_resource) == token
            assert log.token_requests() == 0
            await asyncio.sleep(payload["exp"] - MARGIN - time.time() + 1.1)

    run(journey())


def test_native_short_token_renewed_at_each_expiry(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    _renew_across_expiries(logto, make_client, "native", core_log)


def test_web_short_token_renewed_at_each_expiry(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    """The web app's refresh token does not change, so a remembered refresh result must not be
    served again once its token is due."""
    _renew_across_expiries(logto, make_client, "web", core_log)


def _clear_then_get(logto: RealLogto, make_client: ClientFactory, app: str, core_log) -> None:
    client = make_client(app)

    async def journey() -> None:
        await sign_in(client, logto)
        first = await client.getAccessToken(logto.resource)
        log = core_log()
        await client.clearAccessToken()
        assert client.isAuthenticated()
        second = await client.getAccessToken(logto.resource)
        assert second is not None and second != first
        assert claims(second)["jti"] != claims(first or "")["jti"]
        assert log.token_requests() == 1

    run(journey())


def test_native_clear_access_token_then_new_request(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    _clear_then_get(logto, make_client, "native", core_log)


def test_web_clear_access_token_then_new_request(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    _clear_then_get(logto, make_client, "web", core_log)


def _burst_after_expiry(logto: RealLogto, make_client: ClientFactory, app: str, core_log) -> None:
    client = make_client(app, accessTokenMargin=MARGIN)

    async def journey() -> None:
        await sign_in(client, logto)
        first = await client.getAccessToken(logto.short_resource)
        assert first is not None
        await asyncio.sleep(claims(first)["exp"] - MARGIN - time.time() + 1.1)
        log = core_log()
        tokens = await asyncio.gather(*(client.getAccessToken(logto.short_resource) for _ in range(20)))
        assert len(set(tokens)) == 1 and tokens[0] != first
        assert claims(tokens[0] or "")["exp"] - time.time() > MARGIN - 2
        assert log.token_requests() == 1
        # the threads of a sync app share the same single refresh
        await asyncio.sleep(claims(tokens[0] or "")["exp"] - MARGIN - time.time() + 1.1)
        log = core_log()
        blocking = client.blocking
        threaded = await asyncio.gather(
            *(asyncio.to_thread(blocking.getAccessToken, logto.short_resource) for _ in range(8))
        )
        assert len(set(threaded)) == 1 and threaded[0] not in (first, tokens[0])
        assert log.token_requests() == 1
        assert client.isAuthenticated()

    run(journey())


def test_native_concurrent_burst_after_expiry_one_refresh(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    _burst_after_expiry(logto, make_client, "native", core_log)


def test_web_concurrent_burst_after_expiry_one_refresh(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    _burst_after_expiry(logto, make_client, "web", core_log)


def test_native_two_workers_refresh_at_once_keep_the_session(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    """Two clients of one app share one session store and refresh at the same moment: they
    coordinate, so Logto sees one refresh, and the refresh token left in the store still works
    after Logto's 3 s reuse leeway has passed."""
    storage = MemoryStorage()
    first = make_client("native", storage=storage)
    run(sign_in(first, logto))
    second = make_client("native", storage=storage)

    async def both() -> list[str | None]:
        return list(
            await asyncio.gather(first.getAccessToken(logto.resource), second.getAccessToken(logto.resource))
        )

    log = core_log()
    tokens = run(both())
    assert all(tokens) and log.token_requests() == 1
    time.sleep(3.2)  # past the leeway: a consumed refresh token would now revoke the grant
    run(first.clearAccessToken())
    log = core_log()
    assert run(second.getAccessToken(logto.resource)) is not None
    assert log.token_requests() == 1
    assert first.isAuthenticated() and second.isAuthenticated()


# --- sign-out ------------------------------------------------------------------------------------


@pytest.mark.parametrize("app", APPS)
def test_sign_out_revokes_the_refresh_token(
    logto: RealLogto, make_client: ClientFactory, app: str, core_log
) -> None:
    client = make_client(app)

    async def journey() -> None:
        await sign_in(client, logto)
        refresh_token = client.getRefreshToken()
        id_token = client.getIdToken()
        assert refresh_token and id_token
        log = core_log()
        url = await client.signOut(POST_LOGOUT_URI)
        assert log.count("POST", "/oidc/token/revocation") == 1
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == logto.issuer + "/session/end"
        query = parse_qs(parts.query)
        assert query["client_id"] == [client.config.appId]
        assert query["post_logout_redirect_uri"] == [POST_LOGOUT_URI]
        assert query["id_token_hint"] == [id_token]
        assert not client.isAuthenticated() and client.getRefreshToken() is None
        assert await client.getAccessToken(logto.resource) is None
        refused = refresh_raw(logto, app, refresh_token)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    run(journey())


# --- refused refreshes ---------------------------------------------------------------------------


def _signed_in_pair(
    logto: RealLogto, make_client: ClientFactory, app: str, username: str, **extra_config
) -> tuple[LogtoClient, LogtoClient, MemoryStorage]:
    """A client signed in with the usual resources, and a second client over the same session
    whose configuration differs (a resource added since the user signed in, say)."""
    storage = MemoryStorage()
    first = make_client(app, storage=storage)
    run(sign_in(first, logto, username))
    return first, make_client(app, storage=storage, **extra_config), storage


@pytest.mark.parametrize("app", APPS)
def test_unconfigured_resource_refused_before_any_request(
    logto: RealLogto, make_client: ClientFactory, app: str, core_log
) -> None:
    client = make_client(app)
    run(sign_in(client, logto))
    refresh_token = client.getRefreshToken()
    log = core_log()
    with pytest.raises(LogtoConfigError):
        run(client.getAccessToken(UNKNOWN_RESOURCE))
    assert log.token_requests() == 0
    assert client.isAuthenticated() and client.getRefreshToken() == refresh_token


@pytest.mark.parametrize("app", APPS)
def test_organization_token_without_organizations_scope_refused_locally(
    logto: RealLogto, make_client: ClientFactory, app: str, core_log
) -> None:
    client = make_client(app, scopes=["email"])
    run(sign_in(client, logto))
    log = core_log()
    with pytest.raises(LogtoConfigError):
        run(client.getOrganizationToken(logto.organization_id))
    assert log.token_requests() == 0
    assert client.isAuthenticated()
    assert run(client.getAccessToken(logto.resource)) is not None


def test_web_resource_refused_by_logto_keeps_the_session(
    logto: RealLogto, make_client: ClientFactory, core_log
) -> None:
    """A resource the app is configured for but Logto does not know: invalid_target. Logto keeps
    a confidential app's refresh token, so the session must survive."""
    first, second, _ = _signed_in_pair(
        logto, make_client, "web", "alice", resources=[*config_for_all(logto), UNKNOWN_RESOURCE]
    )
    refresh_token = first.getRefreshToken()
    with pytest.raises(LogtoOAuthError) as refused:
        run(second.getAccessToken(UNKNOWN_RESOURCE))
    assert not isinstance(refused.value, LogtoInvalidGrantError)
    assert refused.value.code == "oauth.invalid_target" and refused.value.status == 400
    assert first.isAuthenticated() and first.getRefreshToken() == refresh_token
    log = core_log()
    token = run(first.getAccessToken(logto.resource))
    assert token is not None and claims(token)["aud"] == logto.resource
    assert log.token_requests() == 1
    assert refresh_raw(logto, "web", refresh_token or "").status_code == 200  # the grant lives


def test_native_resource_refused_by_logto_asks_to_sign_in_again(
    logto: RealLogto, make_client: ClientFactory
) -> None:
    """Logto rotates a public client's refresh token before it checks `resource`, so the refused
    request consumed it: presenting it again (after Logto's 3 s reuse leeway) would revoke the
    grant. The session must end with a typed "sign in again" error."""
    first, second, _ = _signed_in_pair(
        logto,
        make_client,
        "native",
        "alice",
        resources=[logto.resource, logto.short_resource, UNKNOWN_RESOURCE],
    )
    with pytest.raises(LogtoInvalidGrantError):
        run(second.getAccessToken(UNKNOWN_RESOURCE))
    assert not first.isAuthenticated() and first.getRefreshToken() is None
    assert run(first.getAccessToken(logto.resource)) is None


def test_native_ungranted_resource_refused_by_logto_asks_to_sign_in_again(
    logto: RealLogto, make_client: ClientFactory
) -> None:
    """The same with a resource Logto knows but the sign-in did not ask for."""
    storage = MemoryStorage()
    narrow = make_client("native", storage=storage, resources=[logto.resource])
    run(sign_in(narrow, logto))
    wide = make_client("native", storage=storage)
    with pytest.raises(LogtoInvalidGrantError):
        run(wide.getAccessToken(logto.short_resource))
    assert not narrow.isAuthenticated()


@pytest.mark.parametrize("app", APPS)
def test_organization_refused_for_a_non_member_keeps_the_session(
    logto: RealLogto, make_client: ClientFactory, app: str, core_log
) -> None:
    """bob is in no organization: 403 access_denied. Logto checks membership before it rotates
    anything, so even the public client's refresh token is intact and the session must survive."""
    client = make_client(app)
    run(sign_in(client, logto, "bob"))
    for organization_token in (
        lambda: client.getOrganizationToken(logto.organization_id),
        lambda: client.getAccessToken(logto.resource, logto.organization_id),
    ):
        with pytest.raises(LogtoOAuthError) as refused:
            run(organization_token())
        assert not isinstance(refused.value, LogtoInvalidGrantError)
        assert refused.value.code == "oauth.access_denied" and refused.value.status == 403
        assert client.isAuthenticated()
    time.sleep(3.2)  # past Logto's reuse leeway: a consumed refresh token would now be refused
    log = core_log()
    token = run(client.getAccessToken(logto.resource))
    assert token is not None and claims(token)["sub"] == logto.user_id("bob")
    assert log.token_requests() == 1
    assert client.isAuthenticated()


@pytest.mark.parametrize("app", APPS)
def test_no_refusal_is_an_unexpected_error(logto: RealLogto, make_client: ClientFactory, app: str) -> None:
    """Every refusal is a typed LogtoException with a code; never a 5xx or an untyped error."""
    client = make_client(app)
    run(sign_in(client, logto, "bob"))
    for call in (
        lambda: client.getOrganizationToken("no-such-organization"),
        lambda: client.getAccessToken(logto.resource, "no-such-organization"),
    ):
        with pytest.raises(LogtoException) as refused:
            run(call())
        assert refused.value.code.startswith("oauth.") and (refused.value.status or 0) < 500


def test_organizations_scope_constant_is_logtos() -> None:
    assert ORGANIZATIONS_SCOPE == "urn:logto:scope:organizations"
