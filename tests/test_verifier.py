"""Protecting an API: AccessTokenVerifier against the provider's real access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pickle
import threading
import time
from typing import Any, Optional

import httpx
import pytest

from conftest import WEB_APP, ClientFactory, run, sign_in
from logto_rs import (
    AccessTokenClaims,
    AccessTokenVerifier,
    BlockingAccessTokenVerifier,
    LogtoAccessTokenError,
    LogtoClient,
    LogtoConfig,
    LogtoConfigError,
    LogtoInsufficientScopeError,
    LogtoInvalidTokenError,
    LogtoResponseError,
    LogtoTokenValidationError,
    MemoryStorage,
)
from provider_harness import Provider, decode_jwt

API = "https://api.example.com"
SHORT = "https://short.example.com"
ORGS = "urn:logto:scope:organizations"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(
    token: str,
    header: Optional[dict[str, Any]] = None,
    claims: Optional[dict[str, Any]] = None,
    signature: Optional[str] = None,
) -> str:
    """The token with its header and/or claims replaced (the signature kept unless given)."""
    original_header, original_claims = decode_jwt(token)
    head = b64(json.dumps(header if header is not None else original_header).encode())
    body = b64(json.dumps(claims if claims is not None else original_claims).encode())
    return f"{head}.{body}.{token.split('.')[2] if signature is None else signature}"


def hs256(token: str, secret: bytes) -> str:
    """The token re-signed with HS256 keyed by `secret` (the classic key-confusion forgery)."""
    _, claims = decode_jwt(token)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'at+jwt'}).encode())}.{b64(json.dumps(claims).encode())}"
    )
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def p384_public_pem(jwk: dict[str, str]) -> bytes:
    """The SubjectPublicKeyInfo PEM of a P-384 JWK (what a confused HS256 verifier keys with)."""
    point = b"\x04" + base64.urlsafe_b64decode(jwk["x"] + "==") + base64.urlsafe_b64decode(jwk["y"] + "==")
    der = bytes.fromhex("3076301006072a8648ce3d020106052b81040022036200") + point
    lines = [base64.b64encode(der)[i : i + 64].decode() for i in range(0, 120, 64)]
    return ("-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n").encode()


def rejected(verifier: BlockingAccessTokenVerifier, token: str, **kwargs: Any) -> LogtoAccessTokenError:
    with pytest.raises(LogtoAccessTokenError) as caught:
        verifier.verify(token, **kwargs)
    error = caught.value
    assert isinstance(error, LogtoTokenValidationError)  # the existing hierarchy
    assert error.code == f"token.{error.check}"
    signature = token.rsplit(".", 1)[-1][:20]
    for text in (str(error), repr(error), error.www_authenticate, error.description or ""):
        # Never the token, nor its signature, in anything the error shows.
        assert len(token) < 20 or token not in text
        assert len(signature) < 20 or signature not in text
    return error


def jwks_fetches(provider: Provider) -> int:
    return len(provider.requests(path="/oidc/jwks"))


@pytest.fixture
def alice(make_client: ClientFactory) -> LogtoClient:
    """Alice, signed in for the API (read/write:products) and her organizations."""
    client = make_client(
        MemoryStorage(),
        scopes=["read:products", "write:products", "read:members", ORGS],
        resources=[API],
    )
    run(sign_in(client))
    return client


@pytest.fixture
def token(provider: Provider, alice: LogtoClient) -> str:
    """Alice's token for the API; the request log starts empty after it (the sign-in's client
    fetched the JWKS for its ID token)."""
    access_token = run(alice.getAccessToken(API))
    assert access_token
    provider.reset()
    return access_token


@pytest.fixture
def verifier(provider: Provider) -> BlockingAccessTokenVerifier:
    return AccessTokenVerifier(provider.endpoint, API).blocking


def test_a_valid_token_gives_its_claims_and_the_keys_are_fetched_once(
    provider: Provider, token: str, verifier: BlockingAccessTokenVerifier
) -> None:
    claims = verifier.verify(token)
    assert isinstance(claims, AccessTokenClaims)
    assert (claims.sub, claims.aud, claims.client_id) == ("user-alice", API, WEB_APP[0])
    assert claims.iss == provider.issuer and set(claims.scopes) == {"read:products", "write:products"}
    assert claims.model_dump(exclude_unset=True) == decode_jwt(token)[1]  # every claim, as issued
    for _ in range(5):
        assert verifier.verify(token, scopes=["read:products"]).sub == "user-alice"
    assert verifier.verify(token, scopes="read:products write:products").jti == claims.jti
    assert jwks_fetches(provider) == 1
    assert len(provider.requests(path="/oidc/.well-known/openid-configuration")) == 1


def test_the_awaitable_verifier(provider: Provider, token: str) -> None:
    verifier = AccessTokenVerifier(provider.endpoint, API, scopes=["read:products"])
    assert run(verifier.verify(token)).sub == "user-alice"
    results = run(verifier.verifyMany([token, "garbage", token]))
    assert [type(r) for r in results] == [AccessTokenClaims, LogtoInvalidTokenError, AccessTokenClaims]
    assert verifier.blocking.verify(token).sub == "user-alice"  # shares the keys
    assert verifier.blocking is verifier.blocking
    assert jwks_fetches(provider) == 1
    assert repr(verifier) == f"AccessTokenVerifier(endpoint={provider.endpoint!r}, audience={API!r})"


def test_an_rs256_tenant() -> None:
    with Provider().start(alg="RS256") as rs256:
        config = LogtoConfig(
            endpoint=rs256.endpoint,
            appId=WEB_APP[0],
            appSecret=WEB_APP[1],
            scopes=["read:products"],
            resources=[API],
        )
        client = LogtoClient(config, storage=MemoryStorage())
        run(sign_in(client))
        rs_token = run(client.getAccessToken(API))
        assert rs_token and decode_jwt(rs_token)[0]["alg"] == "RS256"
        verifier = BlockingAccessTokenVerifier(rs256.endpoint, API, scopes=["read:products"])
        assert verifier.verify(rs_token).sub == "user-alice"
        assert rejected(verifier, forge(rs_token, claims={**decode_jwt(rs_token)[1], "sub": "x"})).check == (
            "signature"
        )


def test_wrong_audience(provider: Provider, token: str) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, "https://other.example.com")
    error = rejected(verifier, token)
    assert isinstance(error, LogtoInvalidTokenError)
    assert (error.status, error.error, error.check) == (401, "invalid_token", "aud")
    assert error.www_authenticate == (
        'Bearer error="invalid_token", '
        'error_description="the audience (aud) does not contain the expected value"'
    )


def test_expired(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=["read:short"], resources=[SHORT])
    run(sign_in(client))
    short_token = run(client.getAccessToken(SHORT))
    assert short_token
    strict = BlockingAccessTokenVerifier(provider.endpoint, SHORT, clockTolerance=0)
    tolerant = BlockingAccessTokenVerifier(provider.endpoint, SHORT)  # 60 s of clock skew
    assert strict.verify(short_token).scopes == ["read:short"]
    expires = decode_jwt(short_token)[1]["exp"]
    time.sleep(max(0.0, expires + 1.05 - time.time()))
    error = rejected(strict, short_token)
    assert (error.status, error.check) == (401, "exp")
    assert 'error_description="the token has expired (exp)"' in error.www_authenticate
    assert tolerant.verify(short_token).sub == "user-alice"


def test_missing_scope_is_403(provider: Provider, token: str, verifier: BlockingAccessTokenVerifier) -> None:
    error = rejected(verifier, token, scopes=["read:products", "delete:products"])
    assert isinstance(error, LogtoInsufficientScopeError)
    assert (error.status, error.error, error.check) == (403, "insufficient_scope", "scope")
    assert error.www_authenticate == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'scope(s): read:products delete:products", scope="read:products delete:products"'
    )
    configured = BlockingAccessTokenVerifier(provider.endpoint, API, scopes=["delete:products"])
    assert rejected(configured, token).status == 403
    # A scope list as one string is split, never iterated character by character.
    assert verifier.verify(token, scopes="write:products").sub == "user-alice"


def test_organization_tokens_for_the_right_and_the_wrong_organization(
    provider: Provider, alice: LogtoClient
) -> None:
    org_token = run(alice.getOrganizationToken("org-acme"))
    assert org_token and decode_jwt(org_token)[1]["aud"] == "urn:logto:organization:org-acme"

    # Audience given per call: the organization named by the request.
    per_call = BlockingAccessTokenVerifier(provider.endpoint)
    claims = per_call.verify(org_token, organizationId="org-acme", scopes=["read:members"])
    assert claims.aud == "urn:logto:organization:org-acme" and "read:members" in claims.scopes
    assert rejected(per_call, org_token, organizationId="org-globex").check == "aud"
    with pytest.raises(LogtoConfigError):
        per_call.verify(org_token)  # no audience and no organization

    # Audience fixed in the configuration.
    acme = BlockingAccessTokenVerifier(provider.endpoint, "urn:logto:organization:org-acme")
    assert acme.verify(org_token, organizationId="org-acme").sub == "user-alice"
    globex = BlockingAccessTokenVerifier(
        provider.endpoint, "urn:logto:organization:org-globex", organizationId="org-globex"
    )
    assert rejected(globex, org_token).check == "aud"

    # An organization-scoped API resource token carries organization_id; the wrong one is 403.
    scoped = run(alice.getAccessToken(API, "org-acme"))
    assert scoped and decode_jwt(scoped)[1]["organization_id"] == "org-acme"
    api = BlockingAccessTokenVerifier(provider.endpoint, API)
    assert api.verify(scoped, organizationId="org-acme").organization_id == "org-acme"
    error = rejected(api, scoped, organizationId="org-globex")
    assert (error.status, error.check, type(error)) == (403, "organization_id", LogtoInsufficientScopeError)
    # A plain resource token is for no organization.
    assert rejected(api, run(alice.getAccessToken(API)) or "", organizationId="org-acme").status == 403


def test_a_machine_to_machine_token(provider: Provider, verifier: BlockingAccessTokenVerifier) -> None:
    response = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "client_credentials", "resource": API, "scope": "read:products"},
        auth=("m2m-app", "m2m-app-secret"),
    )
    claims = verifier.verify(response.json()["access_token"], scopes=["read:products"])
    assert claims.sub == claims.client_id == "m2m-app"


def test_a_tampered_payload(token: str, verifier: BlockingAccessTokenVerifier) -> None:
    _, claims = decode_jwt(token)
    for tampered in (
        {**claims, "sub": "user-bob"},
        {**claims, "scope": "read:products write:products delete:products"},
        {**claims, "exp": claims["exp"] + 86400},
    ):
        assert rejected(verifier, forge(token, claims=tampered)).check == "signature"
    assert (
        rejected(verifier, token[:-8] + ("A" * 8 if token[-8:] != "A" * 8 else "B" * 8)).check == "signature"
    )


def test_alg_none(token: str, verifier: BlockingAccessTokenVerifier) -> None:
    header, _ = decode_jwt(token)
    for signature in ("", "c2ln", token.split(".")[2]):
        none = forge(token, header={**header, "alg": "none"}, signature=signature)
        error = rejected(verifier, none)
        assert (error.status, error.check) == (401, "alg")


def test_hs256_keyed_with_the_public_key(
    provider: Provider, token: str, verifier: BlockingAccessTokenVerifier
) -> None:
    verifier.verify(token)
    kid = decode_jwt(token)[0]["kid"]
    jwk = next(key for key in provider.keys()["jwks"]["keys"] if key["kid"] == kid)
    for secret in (
        p384_public_pem(jwk),
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":")).encode(),
    ):
        assert rejected(verifier, hs256(token, secret)).check == "alg"


def test_an_id_token_is_not_an_access_token(
    provider: Provider, alice: LogtoClient, verifier: BlockingAccessTokenVerifier
) -> None:
    id_token = alice.getIdToken()
    assert id_token
    as_api = BlockingAccessTokenVerifier(provider.endpoint, WEB_APP[0])
    assert rejected(as_api, id_token).check == "typ"


def test_an_unknown_kid_refetches_once_then_succeeds(provider: Provider, make_client: ClientFactory) -> None:
    # A client that may refetch the JWKS at once: it verifies the ID token of the new key too.
    client = make_client(MemoryStorage(), scopes=["read:products"], resources=[API], jwksRefetchCooldown=0)
    run(sign_in(client))
    token = run(client.getAccessToken(API)) or ""
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=1)
    verifier.verify(token)
    fetched_at = time.monotonic()
    rotated = provider.rotate_keys()
    run(client.clearAccessToken())
    new_token = run(client.getAccessToken(API))
    assert new_token and decode_jwt(new_token)[0]["kid"] == rotated["kid"] != decode_jwt(token)[0]["kid"]
    time.sleep(max(0.0, fetched_at + 1.05 - time.monotonic()))  # past the verifier's cooldown
    fetches = jwks_fetches(provider)  # including the client's own, for the re-issued ID token
    assert verifier.verify(new_token).sub == "user-alice"
    assert jwks_fetches(provider) == fetches + 1
    assert verifier.verify(new_token).sub == verifier.verify(token).sub  # both keys cached now
    assert jwks_fetches(provider) == fetches + 1


def test_an_unknown_kid_refetches_once_then_fails_and_is_rate_limited(provider: Provider, token: str) -> None:
    header, _ = decode_jwt(token)
    forged = [forge(token, header={**header, "kid": f"forged-{i}"}) for i in range(5)]

    eager = BlockingAccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=0)
    eager.verify(token)
    assert jwks_fetches(provider) == 1
    assert rejected(eager, forged[0]).check == "kid"
    assert jwks_fetches(provider) == 2  # exactly one refetch, then the failure

    limited = BlockingAccessTokenVerifier(provider.endpoint, API)  # 30 s cooldown
    limited.verify(token)
    before = jwks_fetches(provider)
    for forged_token in forged:
        assert rejected(limited, forged_token).check == "kid"
    results = limited.verifyMany(forged)
    assert all(isinstance(r, LogtoInvalidTokenError) and r.check == "kid" for r in results)
    assert jwks_fetches(provider) == before + 2  # the burst of two refetches, then none


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "Bearer",
        "Bearer ",
        "not a token",
        "a.b.c",
        "....",
        "e30.e30.e30",
        "é.é.é",
        "\x00" * 10,
        "A" * 10_000_000,
    ],
)
def test_malformed_tokens_are_401(
    provider: Provider, token: str, verifier: BlockingAccessTokenVerifier, garbage: str
) -> None:
    error = rejected(verifier, garbage)
    assert (error.status, type(error), error.check) == (401, LogtoInvalidTokenError, "malformed")
    assert error.www_authenticate.startswith('Bearer error="invalid_token", error_description="the token is')
    assert jwks_fetches(provider) == 0  # garbage never reaches the network
    assert verifier.verify(token).sub == "user-alice"


def test_verify_many_gives_one_result_per_token_in_order(
    provider: Provider, alice: LogtoClient, token: str, verifier: BlockingAccessTokenVerifier
) -> None:
    org_token = run(alice.getOrganizationToken("org-acme")) or ""
    tokens = [token, org_token, "garbage", forge(token, claims={"sub": "x"})] * 10
    results = verifier.verifyMany(iter(tokens), scopes=["read:products"])
    assert len(results) == 40
    for index, result in enumerate(results):
        expected = [AccessTokenClaims, LogtoInvalidTokenError, LogtoInvalidTokenError, LogtoInvalidTokenError]
        assert type(result) is expected[index % 4], index
    checks = [r.check for r in results[:4] if isinstance(r, LogtoAccessTokenError)]
    assert checks == ["aud", "malformed", "signature"]
    assert jwks_fetches(provider) == 1
    assert verifier.verifyMany([]) == []
    scoped = verifier.verifyMany([token] * 20, scopes=["delete:products"])
    assert all(isinstance(r, LogtoInsufficientScopeError) for r in scoped)


def test_roles_are_required_from_the_named_claim(provider: Provider, token: str) -> None:
    verifier = AccessTokenVerifier(provider.endpoint, API)
    with pytest.raises(LogtoInsufficientScopeError) as caught:
        verifier.blocking.verify(token, roles=["product-admin"])  # no roles claim at all
    assert (caught.value.status, caught.value.check, caught.value.code) == (403, "roles", "token.roles")
    assert caught.value.www_authenticate == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'role(s): product-admin"'
    )
    with_role = provider.sign_jwt(
        {**decode_jwt(token)[1], "app_roles": ["product-admin"]}, header={"typ": "at+jwt"}
    )
    claims = run(verifier.verify(with_role, roles=["product-admin"], roles_claim="app_roles"))
    assert claims.sub == "user-alice"
    results = verifier.blocking.verifyMany(
        [token, with_role], roles=["product-admin"], roles_claim="app_roles"
    )
    assert isinstance(results[0], LogtoInsufficientScopeError) and isinstance(results[1], AccessTokenClaims)
    with pytest.raises(LogtoInsufficientScopeError):
        verifier.blocking.verify(with_role, roles=["product-admin"])  # not in the "roles" claim
    with pytest.raises(LogtoConfigError, match="list of role names"):
        verifier.blocking.verify(with_role, roles="product-admin", roles_claim="app_roles")


def test_verify_many_reports_a_key_outage_per_token(provider: Provider, token: str) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    provider.fault("jwks", "html")
    results = verifier.verifyMany([token, "garbage", token])
    assert isinstance(results[0], LogtoResponseError) and isinstance(results[2], LogtoResponseError)
    assert str(results[2]) == str(results[0])  # one fetch failed for both
    assert isinstance(results[1], LogtoInvalidTokenError)
    time.sleep(1.1)  # past the backoff after the failed fetch
    assert verifier.verify(token).sub == "user-alice"  # the next call fetches again


def test_a_key_outage_is_not_a_401(provider: Provider, token: str) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    provider.fault("discovery", "html")
    with pytest.raises(LogtoResponseError) as caught:
        verifier.verify(token)
    assert not isinstance(caught.value, LogtoAccessTokenError)
    assert verifier.verify(token).sub == "user-alice"


def test_one_verifier_shared_by_threads_from_cold(provider: Provider, token: str) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    barrier = threading.Barrier(16)
    outcomes: list[object] = []

    def work() -> None:
        barrier.wait()
        for _ in range(10):
            try:
                outcomes.append(verifier.verify(token).sub)
            except Exception as error:  # pragma: no cover - reported by the assertion
                outcomes.append(error)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["user-alice"] * 160
    assert jwks_fetches(provider) == 1
    assert len(provider.requests(path="/oidc/.well-known/openid-configuration")) == 1


def test_errors_pickle_and_invalid_configuration(provider: Provider, token: str) -> None:
    verifier = BlockingAccessTokenVerifier(provider.endpoint, API)
    error = rejected(verifier, token, scopes=["delete:products"])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is LogtoInsufficientScopeError
    assert (copy.status, copy.check, copy.www_authenticate) == (
        error.status,
        error.check,
        error.www_authenticate,
    )
    for bad in (
        lambda: AccessTokenVerifier("not a url", API),
        lambda: AccessTokenVerifier(provider.endpoint, ""),
        lambda: AccessTokenVerifier(provider.endpoint, API, scopes=["read products"]),
        lambda: AccessTokenVerifier(provider.endpoint, API, requestTimeout=0),
        lambda: verifier.verify(token, scopes=['read"products']),
    ):
        with pytest.raises(LogtoConfigError):
            bad()
