"""Machine tokens: personal access token exchange and machine-to-machine client credentials.

Both are cached per client until shortly before they expire, with one request for any number of
concurrent callers, and both have an awaitable and a blocking form.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import httpx
import pytest

from conftest import ClientFactory, run
from logto_rs import (
    LogtoConfig,
    LogtoConfigError,
    LogtoGrantNotAllowedError,
    LogtoInvalidGrantError,
    LogtoM2MClient,
    LogtoM2MConfig,
    LogtoOAuthError,
    MachineToken,
    TokenExchangeResult,
    exchange_personal_access_token,
    exchange_personal_access_token_blocking,
)
from provider_harness import Provider, decode_jwt, token_hash

API = "https://api.example.com"
SHORT = "https://short.example.com"
MANAGEMENT_API = "https://default.logto.app/api"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
PAT_TYPE = "urn:logto:token-type:personal_access_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
ALICE_PAT = "pat_alice_ci_0123456789abcdefABCDEF"
EXPIRED_PAT = "pat_alice_expired_0123456789abcdef"
BOB_PAT = "pat_bob_0123456789abcdefABCDEF012"
UNKNOWN_PAT = "pat_nobody_0123456789abcdefABCDEF"
M2M_APP = ("m2m-app", "m2m-app-secret")

M2MFactory = Callable[..., LogtoM2MClient]


@pytest.fixture
def make_m2m(provider: Provider) -> M2MFactory:
    """A machine-to-machine client for the seed's m2m-app (override any config field)."""

    def factory(**overrides: Any) -> LogtoM2MClient:
        fields: dict[str, Any] = {"endpoint": provider.endpoint, "appId": M2M_APP[0], "appSecret": M2M_APP[1]}
        fields.update(overrides)
        return LogtoM2MClient(LogtoM2MConfig(**fields))

    return factory


def exchanges(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type=EXCHANGE)


def client_credentials(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type="client_credentials")


def assert_expires_in(token: MachineToken, seconds: float) -> None:
    left = (token.expiresAt - datetime.now(timezone.utc)).total_seconds()
    assert seconds - 5 <= left <= seconds + 1, left
    assert abs(token.expiresIn - left) < 1


# --- personal access token exchange --------------------------------------------------------------


def test_exchange_without_resource_gives_an_opaque_token_for_the_user(
    provider: Provider, make_client: ClientFactory
) -> None:
    client = make_client()
    result = run(client.exchangePersonalAccessToken(ALICE_PAT, scopes=["openid", "profile"]))
    assert isinstance(result, TokenExchangeResult)
    assert result.issuedTokenType == ACCESS_TOKEN_TYPE and result.tokenType == "Bearer"
    assert result.scopes == ["openid", "profile"]
    assert "." not in result.accessToken  # opaque
    assert_expires_in(result, 3600)
    # It acts as alice: the userinfo endpoint takes it.
    info = httpx.get(provider.userinfo_endpoint, headers={"Authorization": f"Bearer {result.accessToken}"})
    assert info.status_code == 200 and info.json()["sub"] == "user-alice"

    [request] = exchanges(provider)
    assert request["form"] == {
        "grant_type": EXCHANGE,
        "subject_token": token_hash(ALICE_PAT),
        "subject_token_type": PAT_TYPE,
        "scope": "openid profile",
    }
    # A confidential app authenticates with HTTP Basic only.
    assert request["authorization"] == {"scheme": "basic", "client_id": "web-app"}


def test_scopes_are_never_inherited(provider: Provider, make_client: ClientFactory) -> None:
    result = run(make_client().exchangePersonalAccessToken(ALICE_PAT, API))
    assert result.scopes == []
    assert not decode_jwt(result.accessToken)[1].get("scope")
    assert "scope" not in exchanges(provider)[0]["form"]


def test_exchange_for_a_resource_with_scopes(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    asked = ["read:products", "write:products", "delete:products", "read:members"]
    alice = run(client.exchangePersonalAccessToken(ALICE_PAT, API, asked))
    header, claims = decode_jwt(alice.accessToken)
    assert header["typ"] == "at+jwt"
    assert claims["aud"] == API and claims["sub"] == "user-alice" and claims["client_id"] == "web-app"
    assert set(alice.scopes) == {"read:products", "write:products", "delete:products"}
    assert set(claims["scope"].split()) == set(alice.scopes)
    # Bob's roles grant less.
    bob = run(client.exchangePersonalAccessToken(BOB_PAT, API, "read:products write:products"))
    assert decode_jwt(bob.accessToken)[1]["sub"] == "user-bob"
    assert bob.scopes == ["read:products"]
    forms = [entry["form"] for entry in exchanges(provider)]
    assert forms[0]["resource"] == API
    assert forms[0]["scope"] == "delete:products read:members read:products write:products"


def test_exchange_for_an_organization(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    org = run(
        client.exchangePersonalAccessToken(ALICE_PAT, organizationId="org-acme", scopes=["read:members"])
    )
    claims = decode_jwt(org.accessToken)[1]
    assert claims["aud"] == "urn:logto:organization:org-acme" and claims["sub"] == "user-alice"
    assert org.scopes == ["read:members"]
    scoped = run(
        client.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"], organizationId="org-acme")
    )
    scoped_claims = decode_jwt(scoped.accessToken)[1]
    assert scoped_claims["aud"] == API and scoped_claims["organization_id"] == "org-acme"
    assert exchanges(provider)[0]["form"]["organization_id"] == "org-acme"

    with pytest.raises(LogtoOAuthError) as caught:
        run(client.exchangePersonalAccessToken(BOB_PAT, organizationId="org-acme"))
    assert caught.value.status == 403 and caught.value.error == "access_denied"
    assert caught.value.code == "oauth.access_denied"


@pytest.mark.parametrize("pat", [EXPIRED_PAT, UNKNOWN_PAT], ids=["expired", "unknown"])
def test_expired_and_unknown_tokens_are_invalid_grant(
    provider: Provider, make_client: ClientFactory, pat: str
) -> None:
    client = make_client()
    for _ in range(2):  # a failure is not cached
        with pytest.raises(LogtoInvalidGrantError) as caught:
            run(client.exchangePersonalAccessToken(pat, API, ["read:products"]))
        error = caught.value
        assert error.code == "oauth.invalid_grant" and error.error == "invalid_grant"
        assert error.status == 400
        assert pat not in str(error) and pat not in repr(error)
    assert len(exchanges(provider)) == 2
    with pytest.raises(LogtoInvalidGrantError):
        client.blocking.exchangePersonalAccessToken(pat)


@pytest.mark.parametrize("app", ["web-no-rotate", "spa-app"], ids=["confidential", "public"])
def test_an_app_without_token_exchange_is_told_to_enable_it(
    provider: Provider, make_client: ClientFactory, app: str
) -> None:
    secret = {"web-no-rotate": "web-no-rotate-secret", "spa-app": None}[app]
    client = make_client(appId=app, appSecret=secret)
    with pytest.raises(LogtoGrantNotAllowedError) as caught:
        run(client.exchangePersonalAccessToken(ALICE_PAT))
    error = caught.value
    assert isinstance(error, LogtoOAuthError)
    assert error.code == "token_exchange.not_allowed"
    assert "enable token exchange for the app" in error.message
    assert (error.error, error.status) == ("invalid_request", 400)
    assert error.description == "requested grant type is not allowed for this client"

    [request] = exchanges(provider)
    if secret is None:  # a public app: its client_id alone, no secret anywhere
        assert request["authorization"] is None
        assert request["form"]["client_id"] == app and "client_secret" not in request["form"]
    else:  # Basic only: never client_id in the form as well, never "None"
        assert request["authorization"] == {"scheme": "basic", "client_id": app}
        assert "client_id" not in request["form"]


def test_exchanged_tokens_are_cached_per_token_and_target(
    provider: Provider, make_client: ClientFactory
) -> None:
    client = make_client()
    first = run(client.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products", "write:products"]))
    # The same target in another order or form, from the blocking twin: a cache hit.
    assert run(client.exchangePersonalAccessToken(ALICE_PAT, API, "write:products read:products")) == first
    assert (
        client.blocking.exchangePersonalAccessToken(ALICE_PAT, API, ["write:products", "read:products"])
        == first
    )
    assert len(exchanges(provider)) == 1
    # Another scope set, another token, another resource: one request each.
    run(client.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"]))
    run(client.exchangePersonalAccessToken(BOB_PAT, API, ["read:products", "write:products"]))
    run(client.exchangePersonalAccessToken(ALICE_PAT, SHORT, ["read:products", "write:products"]))
    assert len(exchanges(provider)) == 4
    # Another client has its own cache.
    assert run(make_client().exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"])) != first
    assert len(exchanges(provider)) == 5


def test_concurrent_exchanges_share_one_request(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()

    async def twenty() -> list[TokenExchangeResult]:
        calls = [client.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"]) for _ in range(20)]
        return await asyncio.gather(*calls)

    results = run(twenty())
    assert len({result.accessToken for result in results}) == 1
    assert len(exchanges(provider)) == 1


def test_the_standalone_function_needs_no_client(provider: Provider) -> None:
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    awaited = run(exchange_personal_access_token(config, ALICE_PAT, resource=API, scopes=["read:products"]))
    blocking = exchange_personal_access_token_blocking(
        config, BOB_PAT, resource=API, scopes=["read:products"]
    )
    assert decode_jwt(awaited.accessToken)[1]["sub"] == "user-alice"
    assert decode_jwt(blocking.accessToken)[1]["sub"] == "user-bob"
    assert awaited.scopes == blocking.scopes == ["read:products"]
    assert len(exchanges(provider)) == 2
    with pytest.raises(LogtoInvalidGrantError):
        exchange_personal_access_token_blocking(config, EXPIRED_PAT)


def test_invalid_arguments_are_refused_before_any_request(
    provider: Provider, make_client: ClientFactory
) -> None:
    client = make_client()
    for call in (
        lambda: client.blocking.exchangePersonalAccessToken(ALICE_PAT, "not-a-uri"),
        lambda: client.blocking.exchangePersonalAccessToken(ALICE_PAT, scopes=["two words"]),
        lambda: client.blocking.exchangePersonalAccessToken(" "),
    ):
        with pytest.raises(LogtoConfigError) as caught:
            call()
        assert caught.value.code == "config.invalid"
    assert exchanges(provider) == []


# --- machine-to-machine ----------------------------------------------------------------------------


def test_m2m_token_for_an_api_resource(provider: Provider, make_m2m: M2MFactory) -> None:
    token = run(make_m2m().getAccessToken(API, ["read:products", "write:products", "delete:products"]))
    assert isinstance(token, MachineToken) and token.tokenType == "Bearer"
    assert token.scopes == ["read:products", "write:products"]  # what the app's roles grant
    claims = decode_jwt(token.accessToken)[1]
    assert claims["aud"] == API and claims["sub"] == "m2m-app" and claims["client_id"] == "m2m-app"
    assert_expires_in(token, 3600)
    [request] = client_credentials(provider)
    assert request["authorization"] == {"scheme": "basic", "client_id": "m2m-app"}
    assert request["form"] == {
        "grant_type": "client_credentials",
        "resource": API,
        "scope": "delete:products read:products write:products",
    }


def test_m2m_organization_token(provider: Provider, make_m2m: M2MFactory) -> None:
    client = make_m2m()
    token = run(client.getAccessToken(organizationId="org-acme", scopes=["read:members", "write:members"]))
    assert decode_jwt(token.accessToken)[1]["aud"] == "urn:logto:organization:org-acme"
    assert token.scopes == ["read:members"]
    with pytest.raises(LogtoOAuthError) as caught:
        run(client.getAccessToken(organizationId="org-globex"))
    assert (caught.value.status, caught.value.code) == (403, "oauth.access_denied")


def test_management_api_token(provider: Provider, make_m2m: M2MFactory) -> None:
    client = make_m2m()
    assert client.managementApiResource == MANAGEMENT_API
    token = run(client.getManagementApiToken())
    claims = decode_jwt(token.accessToken)[1]
    assert claims["aud"] == MANAGEMENT_API and token.scopes == ["all"]
    # The same key as asking for it by hand: cached.
    assert run(client.getAccessToken(MANAGEMENT_API, ["all"])) == token
    assert client.blocking.getManagementApiToken() == token
    assert client_credentials(provider)[0]["form"] == {
        "grant_type": "client_credentials",
        "resource": MANAGEMENT_API,
        "scope": "all",
    }
    assert len(client_credentials(provider)) == 1
    # An app without a Management API role gets no scope.
    limited = make_m2m(appId="m2m-limited", appSecret="m2m-limited-secret")
    assert limited.blocking.getManagementApiToken().scopes == []


def test_the_management_api_resource_follows_the_endpoint(make_m2m: M2MFactory) -> None:
    cloud = LogtoM2MClient(LogtoM2MConfig(endpoint="https://abc123.logto.app", appId="a", appSecret="s"))
    assert cloud.managementApiResource == "https://abc123.logto.app/api"
    custom = make_m2m(managementApiResource="https://tenant-x.logto.app/api")
    assert custom.managementApiResource == "https://tenant-x.logto.app/api"


def test_m2m_errors(provider: Provider, make_m2m: M2MFactory) -> None:
    with pytest.raises(LogtoConfigError) as missing:
        run(make_m2m().getAccessToken())
    assert "resource or an organization id" in missing.value.message
    assert client_credentials(provider) == []

    with pytest.raises(LogtoOAuthError) as wrong_secret:
        make_m2m(appSecret="not-the-secret").blocking.getAccessToken(API)
    assert wrong_secret.value.code == "oauth.invalid_client" and wrong_secret.value.status == 401
    assert "not-the-secret" not in repr(wrong_secret.value)

    with pytest.raises(LogtoGrantNotAllowedError) as not_m2m:
        make_m2m(appId="web-app", appSecret="web-app-secret").blocking.getAccessToken(API)
    assert not_m2m.value.code == "client_credentials.not_allowed"

    with pytest.raises(LogtoOAuthError) as unknown_resource:
        make_m2m().blocking.getAccessToken("https://unknown.example.com")
    assert unknown_resource.value.code == "oauth.invalid_target"

    with pytest.raises(LogtoConfigError):
        LogtoM2MConfig(endpoint="ftp://x", appId="a", appSecret="s")
    with pytest.raises(LogtoConfigError):
        LogtoM2MConfig(endpoint=provider.endpoint, appId="a", appSecret="")


def test_m2m_cache_hit_then_refetch_after_expiry(provider: Provider, make_m2m: M2MFactory) -> None:
    client = make_m2m(accessTokenMargin=0)
    first = run(client.getAccessToken(SHORT))  # the short-lived resource: 2 s
    assert_expires_in(first, 2)
    assert run(client.getAccessToken(SHORT)) == first
    assert client.blocking.getAccessToken(SHORT) == first
    assert len(client_credentials(provider)) == 1
    time.sleep(2.2)
    renewed = run(client.getAccessToken(SHORT))
    assert renewed.accessToken != first.accessToken
    assert len(client_credentials(provider)) == 2
    # With the default margin (60 s) a 2 s token is never fresh enough to reuse.
    eager = make_m2m()
    run(eager.getAccessToken(SHORT))
    run(eager.getAccessToken(SHORT))
    assert len(client_credentials(provider)) == 4


def test_twenty_concurrent_m2m_callers_make_one_request(provider: Provider, make_m2m: M2MFactory) -> None:
    client = make_m2m()

    async def twenty() -> list[MachineToken]:
        return await asyncio.gather(*(client.getAccessToken(API, ["read:products"]) for _ in range(20)))

    tokens = run(twenty())
    assert len({token.accessToken for token in tokens}) == 1
    assert len(client_credentials(provider)) == 1


def test_twenty_threads_with_the_blocking_client_make_one_request(
    provider: Provider, make_m2m: M2MFactory
) -> None:
    client = make_m2m().blocking
    tokens: list[str] = []
    barrier = threading.Barrier(20)

    def call() -> None:
        barrier.wait()
        tokens.append(client.getAccessToken(API, ["read:products"]).accessToken)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tokens) == 20 and len(set(tokens)) == 1
    assert len(client_credentials(provider)) == 1


def test_an_m2m_app_can_exchange_tokens_too(provider: Provider, make_m2m: M2MFactory) -> None:
    result = make_m2m().blocking.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"])
    claims = decode_jwt(result.accessToken)[1]
    assert claims["sub"] == "user-alice" and claims["client_id"] == "m2m-app"


# --- no secret anywhere -----------------------------------------------------------------------------


def test_no_secret_in_any_output_exception_or_repr(
    provider: Provider, make_client: ClientFactory, make_m2m: M2MFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    client = make_client()
    m2m = make_m2m()
    exchanged = run(client.exchangePersonalAccessToken(ALICE_PAT, API, ["read:products"]))
    machine = m2m.blocking.getAccessToken(API, ["read:products"])
    management = m2m.blocking.getManagementApiToken()
    pats = m2m.blocking.managementApi.listPersonalAccessTokens("user-alice")
    created = m2m.blocking.managementApi.createPersonalAccessToken(
        "user-bob", "redaction", timedelta(hours=1)
    )
    try:
        errors: list[BaseException] = []
        for failing in (
            lambda: client.blocking.exchangePersonalAccessToken(EXPIRED_PAT),
            lambda: make_client(appId="spa-app", appSecret=None).blocking.exchangePersonalAccessToken(
                ALICE_PAT
            ),
            lambda: make_m2m(appSecret="wrong-m2m-secret").blocking.getAccessToken(API),
            lambda: m2m.blocking.managementApi.createPersonalAccessToken("user-bob", "redaction"),
        ):
            with pytest.raises(Exception) as caught:
                failing()
            errors.append(caught.value)

        shown: list[object] = [exchanged, machine, management, created, *pats, client, m2m, m2m.config]
        shown += [m2m.managementApi, m2m.blocking, m2m.blocking.managementApi, *errors]
        for item in shown:
            print(repr(item))
            print(str(item))
        for error in errors:
            print(*error.args)
        out, err = capfd.readouterr()
    finally:
        m2m.blocking.managementApi.deletePersonalAccessToken("user-bob", "redaction")

    secrets = [ALICE_PAT, EXPIRED_PAT, BOB_PAT, "web-app-secret", "m2m-app-secret", "wrong-m2m-secret"]
    secrets += [exchanged.accessToken, machine.accessToken, management.accessToken, created.value]
    secrets += [pat.value for pat in pats]
    assert "redaction" in out and "user-alice" in out  # the output is there
    for secret in secrets:
        assert secret and secret not in out and secret not in err
