"""Token exchange between services against the development provider.

Delegation: an API that received alice's access token exchanges it for a token to a downstream
API (`https://reports.example.com`), for alice, with the scopes her roles allow; cached per
subject token and target, with one request for concurrent callers. Impersonation: a subject
token from the Management API, exchanged once (never cached), with an actor token naming who
acts. Both refused for an app without token exchange (a third-party app cannot have it), and for
tokens Logto does not accept, each with its typed error; a third-party app's user token is a
subject like any other (Logto 1.42).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Callable

import pytest

from conftest import ClientFactory, run, sign_in
from logto_rs import (
    AccessTokenVerifier,
    LogtoApiNotFoundError,
    LogtoClient,
    LogtoConfigError,
    LogtoGrantNotAllowedError,
    LogtoInvalidGrantError,
    LogtoM2MClient,
    LogtoM2MConfig,
    LogtoOAuthError,
    SubjectToken,
    TokenExchangeResult,
)
from provider_harness import Provider, decode_jwt, token_hash

API = "https://api.example.com"
SHORT = "https://short.example.com"
REPORTS = "https://reports.example.com"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
IMPERSONATION_TYPE = "urn:logto:token-type:impersonation_token"
REPORT_SCOPES = ["read:reports", "write:reports", "delete:reports"]


def exchanges(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type=EXCHANGE)


def user_token(
    make_client: ClientFactory, username: str = "alice", resource: str = API, **config: Any
) -> str:
    """The access token `username` presents to our API (signed in with the seed's web app)."""
    client = make_client(resources=[resource], scopes=["read:products", "read:short"], **config)
    run(sign_in(client, username))
    token = client.blocking.getAccessToken(resource)
    assert token
    return token


@pytest.fixture
def service(make_client: ClientFactory) -> LogtoClient:
    """Our API's own app: the seed's confidential web app, with token exchange allowed."""
    return make_client()


@pytest.fixture
def m2m(provider: Provider) -> LogtoM2MClient:
    return LogtoM2MClient(
        LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
    )


# --- delegation ----------------------------------------------------------------------------------


def test_delegation_gives_the_user_a_downstream_token_with_the_scopes_their_roles_allow(
    provider: Provider, make_client: ClientFactory, service: LogtoClient
) -> None:
    alice, bob = user_token(make_client, "alice"), user_token(make_client, "bob")
    provider.reset()
    for_alice = run(service.exchangeAccessToken(alice, REPORTS, REPORT_SCOPES + ["read:products"]))
    assert isinstance(for_alice, TokenExchangeResult)
    assert for_alice.scopes == ["read:reports", "write:reports"]  # alice's roles
    assert for_alice.tokenType == "Bearer" and for_alice.issuedTokenType == ACCESS_TOKEN_TYPE
    assert 3590 < for_alice.expiresIn <= 3600
    for_bob = service.blocking.exchangeAccessToken(bob, REPORTS, REPORT_SCOPES)
    assert for_bob.scopes == ["read:reports"]  # bob's role reads only

    claims = AccessTokenVerifier(provider.endpoint, REPORTS, allowImpersonation=True).blocking.verify(
        for_alice.accessToken, scopes=["write:reports"]
    )
    assert claims.sub == "user-alice" and claims.aud == REPORTS and claims.client_id == "web-app"
    assert decode_jwt(for_bob.accessToken)[1]["sub"] == "user-bob"

    first = exchanges(provider)[0]
    assert first["form"] == {
        "grant_type": EXCHANGE,
        "subject_token": token_hash(alice),
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "resource": REPORTS,
        "scope": "delete:reports read:products read:reports write:reports",
    }
    assert first["authorization"] == {"scheme": "basic", "client_id": "web-app"}


def test_delegation_to_an_organization(
    provider: Provider, make_client: ClientFactory, m2m: LogtoM2MClient
) -> None:
    alice, bob = user_token(make_client, "alice"), user_token(make_client, "bob")
    org = m2m.blocking.exchangeAccessToken(alice, organizationId="org-acme", scopes=["read:members", "x"])
    claims = decode_jwt(org.accessToken)[1]
    assert claims["aud"] == "urn:logto:organization:org-acme" and claims["sub"] == "user-alice"
    assert claims["client_id"] == "m2m-app" and org.scopes == ["read:members"]
    scoped = m2m.blocking.exchangeAccessToken(alice, API, ["read:products"], organizationId="org-acme")
    assert decode_jwt(scoped.accessToken)[1]["organization_id"] == "org-acme"
    with pytest.raises(LogtoOAuthError) as refused:
        m2m.blocking.exchangeAccessToken(bob, organizationId="org-acme", scopes=["read:members"])
    assert (refused.value.status, refused.value.code) == (403, "oauth.access_denied")


def test_delegated_tokens_are_cached_per_subject_token_and_target(
    provider: Provider, make_client: ClientFactory, service: LogtoClient
) -> None:
    alice = user_token(make_client, "alice")
    provider.reset()
    first = run(service.exchangeAccessToken(alice, REPORTS, ["read:reports", "write:reports"]))
    # Again, with the scopes in another order or form, from the blocking twin: no request.
    assert run(service.exchangeAccessToken(alice, REPORTS, "write:reports read:reports")) == first
    assert service.blocking.exchangeAccessToken(alice, REPORTS, ["write:reports", "read:reports"]) == first
    assert len(exchanges(provider)) == 1
    # Another target, or another client: one request each.
    run(service.exchangeAccessToken(alice, REPORTS, ["read:reports"]))
    run(service.exchangeAccessToken(alice, API, ["read:products"]))
    assert len(exchanges(provider)) == 3


def test_concurrent_delegations_share_one_request(
    provider: Provider, make_client: ClientFactory, service: LogtoClient, m2m: LogtoM2MClient
) -> None:
    alice = user_token(make_client, "alice")
    provider.reset()

    async def twenty() -> list[TokenExchangeResult]:
        return await asyncio.gather(
            *(service.exchangeAccessToken(alice, REPORTS, ["read:reports"]) for _ in range(20))
        )

    assert len({result.accessToken for result in run(twenty())}) == 1
    # Threads with the blocking machine-to-machine client.
    results: list[TokenExchangeResult] = []
    start = threading.Barrier(10)

    def call() -> None:
        start.wait()
        results.append(m2m.blocking.exchangeAccessToken(alice, REPORTS, ["read:reports"]))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 10 and len({result.accessToken for result in results}) == 1
    assert len(exchanges(provider)) == 2  # one per client


def test_a_delegated_token_is_not_served_after_the_subject_token_expired(
    provider: Provider, make_client: ClientFactory, service: LogtoClient
) -> None:
    short = user_token(make_client, "alice", resource=SHORT)  # lives 2 s
    provider.reset()
    exp = decode_jwt(short)[1]["exp"]
    result = service.blocking.exchangeAccessToken(short, REPORTS, ["read:reports"])
    assert result.expiresIn > 3000  # the downstream token lives longer than its subject token
    assert service.blocking.exchangeAccessToken(short, REPORTS, ["read:reports"]) == result
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    # Past the subject token's exp the cache does not answer: Logto does, and refuses it.
    with pytest.raises(LogtoInvalidGrantError):
        service.blocking.exchangeAccessToken(short, REPORTS, ["read:reports"])
    assert len(exchanges(provider)) == 2


@pytest.mark.parametrize("app", ["web-no-rotate", "third-party-app"], ids=["exchange-off", "third-party"])
def test_an_app_without_token_exchange_is_refused(
    provider: Provider, make_client: ClientFactory, app: str
) -> None:
    alice = user_token(make_client, "alice")
    client = make_client(appId=app, appSecret=f"{app}-secret")
    for _ in range(2):  # a refusal is not cached
        with pytest.raises(LogtoGrantNotAllowedError) as refused:
            client.blocking.exchangeAccessToken(alice, REPORTS, ["read:reports"])
        assert refused.value.code == "token_exchange.not_allowed"
        assert alice not in str(refused.value) and alice not in repr(refused.value)
    assert len(exchanges(provider)) == 2


def test_subject_tokens_logto_does_not_accept_are_invalid_grant(
    provider: Provider, make_client: ClientFactory, service: LogtoClient, m2m: LogtoM2MClient
) -> None:
    alice = user_token(make_client, "alice")
    header, payload, signature = alice.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    machine = m2m.blocking.getAccessToken(API, ["read:products"]).accessToken
    for subject in (forged, "not-a-token", machine):
        with pytest.raises(LogtoInvalidGrantError) as refused:
            service.blocking.exchangeAccessToken(subject, REPORTS, ["read:reports"])
        assert refused.value.code == "oauth.invalid_grant" and refused.value.status == 400
        assert subject not in str(refused.value)


def test_a_third_party_apps_user_token_is_a_subject_token(
    provider: Provider, make_client: ClientFactory, service: LogtoClient
) -> None:
    """Logto 1.42 accepts it: the user's roles decide the scopes, not the app it was issued to."""
    third_party = user_token(
        make_client, "alice", appId="third-party-app", appSecret="third-party-app-secret"
    )
    result = service.blocking.exchangeAccessToken(third_party, REPORTS, REPORT_SCOPES)
    assert result.scopes == ["read:reports", "write:reports"]
    claims = decode_jwt(result.accessToken)[1]
    assert claims["sub"] == "user-alice" and claims["client_id"] == "web-app"


def test_delegation_needs_a_confidential_app_and_a_token(
    provider: Provider, make_client: ClientFactory
) -> None:
    public = make_client(appId="spa-app", appSecret=None)
    confidential = make_client()
    for call in (
        lambda: public.blocking.exchangeAccessToken("eyJ.a.b", REPORTS),
        lambda: confidential.blocking.exchangeAccessToken(" ", REPORTS),
        lambda: confidential.blocking.exchangeAccessToken("eyJ.a.b", "not-a-uri"),
    ):
        with pytest.raises(LogtoConfigError):
            call()
    assert exchanges(provider) == []


# --- impersonation -------------------------------------------------------------------------------


def test_impersonation_is_exchanged_once_and_verifies(
    provider: Provider, service: LogtoClient, m2m: LogtoM2MClient
) -> None:
    api = m2m.blocking.managementApi
    created = api.createSubjectToken("user-alice", context={"ticket": "T-42"})
    assert isinstance(created, SubjectToken) and created.subjectToken.startswith("sub_")
    assert created.expiresIn == 600 and 590 < (created.expiresAt.timestamp() - time.time()) <= 600
    assert created.subjectToken not in repr(created) and created.subjectToken not in str(created)

    result = run(
        service.exchangeSubjectToken(created.subjectToken, API, ["read:products", "delete:products"])
    )
    assert result.scopes == ["delete:products", "read:products"]
    claims = AccessTokenVerifier(provider.endpoint, API, allowImpersonation=True).blocking.verify(
        result.accessToken, scopes=["read:products"]
    )
    assert claims.sub == "user-alice" and claims.client_id == "web-app"
    assert "act" not in claims.model_dump(exclude_none=True)

    # Single-use: the same subject token again is refused (and never answered from a cache).
    with pytest.raises(LogtoInvalidGrantError) as reused:
        service.blocking.exchangeSubjectToken(created.subjectToken, API, ["read:products"])
    assert created.subjectToken not in str(reused.value)
    forms = [entry["form"] for entry in exchanges(provider)]
    assert len(forms) == 2 and forms[0]["subject_token_type"] == IMPERSONATION_TYPE
    assert forms[0]["subject_token"] == token_hash(created.subjectToken)


def test_a_cancelled_impersonation_completes_and_its_retry_gets_the_token(
    provider: Provider, service: LogtoClient, m2m: LogtoM2MClient
) -> None:
    subject = m2m.blocking.managementApi.createSubjectToken("user-alice").subjectToken
    provider.fault("token", "hang", delay_ms=1500)  # the exchange is answered late

    async def cancel_then_retry() -> TokenExchangeResult:
        call = asyncio.ensure_future(service.exchangeSubjectToken(subject, API, ["read:products"]))
        await asyncio.sleep(0.5)  # sent, not yet answered
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(1.5)  # Logto has spent the subject token by now
        return await service.exchangeSubjectToken(subject, API, ["read:products"])

    retried = run(cancel_then_retry())
    claims = AccessTokenVerifier(provider.endpoint, API).blocking.verify(retried.accessToken)
    assert claims.sub == "user-alice" and retried.scopes == ["read:products"]
    assert len(exchanges(provider)) == 1
    # The kept token was handed out once: asking again is a new exchange of a spent token.
    with pytest.raises(LogtoInvalidGrantError):
        service.blocking.exchangeSubjectToken(subject, API, ["read:products"])
    assert len(exchanges(provider)) == 2


def test_an_actor_token_names_who_acts(
    provider: Provider, make_client: ClientFactory, service: LogtoClient, m2m: LogtoM2MClient
) -> None:
    support = make_client()
    run(sign_in(support, "bob"))
    actor = support.blocking.getAccessToken()  # opaque, with openid
    assert actor and "." not in actor
    subject = m2m.blocking.managementApi.createSubjectToken("user-alice").subjectToken
    result = service.blocking.exchangeSubjectToken(subject, API, ["read:products"], actorToken=actor)
    claims = AccessTokenVerifier(provider.endpoint, API, allowImpersonation=True).blocking.verify(
        result.accessToken
    )
    assert claims.sub == "user-alice" and claims.act is not None and claims.act.sub == "user-bob"
    [request] = exchanges(provider)
    assert request["form"]["actor_token"] == token_hash(actor)
    assert request["form"]["actor_token_type"] == ACCESS_TOKEN_TYPE

    # An actor token without `openid` (a resource token) is refused.
    with pytest.raises(LogtoInvalidGrantError):
        service.blocking.exchangeSubjectToken(
            m2m.blocking.managementApi.createSubjectToken("user-alice").subjectToken,
            API,
            actorToken=user_token(make_client, "bob"),
        )


def test_the_older_subject_token_type_and_the_m2m_client(provider: Provider, m2m: LogtoM2MClient) -> None:
    api = m2m.managementApi

    async def impersonate() -> TokenExchangeResult:
        created = await api.createSubjectToken("user-bob")
        return await m2m.exchangeSubjectToken(
            created.subjectToken, API, ["read:products", "write:products"], subjectTokenType=ACCESS_TOKEN_TYPE
        )

    result = run(impersonate())
    assert decode_jwt(result.accessToken)[1]["sub"] == "user-bob" and result.scopes == ["read:products"]
    assert exchanges(provider)[0]["form"]["subject_token_type"] == ACCESS_TOKEN_TYPE


def test_impersonation_refusals(provider: Provider, make_client: ClientFactory, m2m: LogtoM2MClient) -> None:
    api = m2m.blocking.managementApi
    subject = api.createSubjectToken("user-alice").subjectToken
    for app in ("web-no-rotate", "third-party-app"):
        with pytest.raises(LogtoGrantNotAllowedError):
            make_client(appId=app, appSecret=f"{app}-secret").blocking.exchangeSubjectToken(subject, API)
    # Refused apps did not use it up.
    assert make_client().blocking.exchangeSubjectToken(subject, API).accessToken
    with pytest.raises(LogtoInvalidGrantError):
        make_client().blocking.exchangeSubjectToken("sub_unknown0123456789abcd", API)
    with pytest.raises(LogtoApiNotFoundError) as unknown:
        api.createSubjectToken("user-nobody")
    assert unknown.value.status == 404
    calls: list[Callable[[], object]] = [
        lambda: make_client().blocking.exchangeSubjectToken(subject, subjectTokenType="urn:x"),  # type: ignore[arg-type]
        lambda: make_client().blocking.exchangeSubjectToken(""),
        lambda: api.createSubjectToken(""),
    ]
    for call in calls:
        with pytest.raises(LogtoConfigError):
            call()
