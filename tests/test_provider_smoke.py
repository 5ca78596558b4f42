"""Smoke tests of the development OpenID provider and its Python harness.

Each flow is performed by hand with httpx so that these tests also document the wire protocol the
provider speaks (Logto's, see /work/shared/design/logto-protocol.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest

from provider_harness import (
    Provider,
    SignInError,
    complete_sign_in,
    complete_sign_out,
    decode_jwt,
    deny_sign_in,
    load_seed,
    pkce_pair,
    token_hash,
)

CALLBACK = "http://127.0.0.1/callback"
API = "https://api.example.com"
SHORT_API = "https://short.example.com"
MANAGEMENT_API = "https://default.logto.app/api"
ORGS_RESOURCE = "urn:logto:resource:organizations"
ORGS_SCOPE = "urn:logto:scope:organizations"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
PAT_TYPE = "urn:logto:token-type:personal_access_token"
SECRETS = {c["client_id"]: c.get("client_secret") for c in load_seed()["clients"]}


@pytest.fixture(scope="module")
def provider():
    server = Provider.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean(provider):
    provider.reset()
    yield
    provider.reset()


@pytest.fixture()
def http():
    with httpx.Client(timeout=10.0) as client:
        yield client


def auth_for(client_id):
    secret = SECRETS[client_id]
    return (client_id, secret) if secret else None


def token_request(http, provider, client_id, **form):
    data = {k: v for k, v in form.items() if v is not None}
    if SECRETS[client_id] is None:
        data["client_id"] = client_id
    return http.post(provider.token_endpoint, data=data, auth=auth_for(client_id))


def sign_in(
    http,
    provider,
    client_id="web-app",
    scope="openid offline_access profile",
    resources=(),
    username="alice",
    nonce=None,
    browser=None,
):
    """Authorization code + PKCE, by hand. Returns the token response JSON."""
    verifier, challenge = pkce_pair()
    url = provider.authorization_url(
        client_id, CALLBACK, challenge, scope=scope, resources=resources, nonce=nonce, state="st-1"
    )
    callback = complete_sign_in(url, CALLBACK, username=username, client=browser)
    params = dict(httpx.URL(callback).params)
    assert params["state"] == "st-1"
    assert params["iss"] == provider.issuer
    response = token_request(
        http,
        provider,
        client_id,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=CALLBACK,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(http, provider, refresh_token, client_id="web-app", **extra):
    return token_request(
        http, provider, client_id, grant_type="refresh_token", refresh_token=refresh_token, **extra
    )


def claims(token):
    return decode_jwt(token)[1]


# --- discovery and sign-in ------------------------------------------------------------------------


def test_discovery_has_logto_endpoints_under_oidc(provider, http):
    config = http.get(provider.discovery_url).json()
    assert config["issuer"] == provider.issuer == provider.endpoint + "/oidc"
    base = provider.issuer
    assert config["authorization_endpoint"] == base + "/auth"
    assert config["token_endpoint"] == base + "/token"
    assert config["userinfo_endpoint"] == base + "/me"
    assert config["jwks_uri"] == base + "/jwks"
    assert config["end_session_endpoint"] == base + "/session/end"
    assert config["revocation_endpoint"] == base + "/token/revocation"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert "ES384" in config["id_token_signing_alg_values_supported"]
    assert {"client_credentials", TOKEN_EXCHANGE} <= set(config["grant_types_supported"])
    assert {ORGS_SCOPE, "custom_data", "identities", "roles"} <= set(config["scopes_supported"])


def test_code_flow_with_pkce_and_nonce(provider, http):
    verifier, challenge = pkce_pair()
    url = provider.authorization_url(
        "web-app", CALLBACK, challenge, nonce="nonce-42", scope="openid offline_access profile email"
    )
    callback = complete_sign_in(url, CALLBACK)
    code = dict(httpx.URL(callback).params)["code"]
    response = http.post(
        provider.token_endpoint,
        auth=("web-app", SECRETS["web-app"]),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert "refresh_token" in tokens
    assert len(tokens["access_token"].split(".")) == 1  # opaque without a resource
    header, payload = decode_jwt(tokens["id_token"])
    assert header["alg"] == "ES384"
    assert header["kid"] in {key["kid"] for key in http.get(provider.jwks_uri).json()["keys"]}
    assert payload["iss"] == provider.issuer and payload["aud"] == "web-app"
    assert payload["sub"] == "user-alice" and payload["nonce"] == "nonce-42"
    assert payload["email"] == "alice@example.com" and payload["username"] == "alice"
    assert "at_hash" not in payload and "typ" not in header  # like Logto 1.42


def test_pkce_is_required(provider):
    url = (
        provider.authorization_endpoint
        + "?"
        + str(
            httpx.QueryParams(
                {
                    "client_id": "web-app",
                    "redirect_uri": CALLBACK,
                    "response_type": "code",
                    "scope": "openid",
                    "state": "s",
                }
            )
        )
    )
    with httpx.Client() as browser:
        response = browser.get(url)
    assert response.status_code == 303
    params = dict(httpx.URL(response.headers["location"]).params)
    assert params["error"] == "invalid_request" and "PKCE" in params["error_description"]


def test_login_page_and_wrong_password(provider):
    _, challenge = pkce_pair()
    with httpx.Client() as browser:
        response = browser.get(provider.authorization_url("web-app", CALLBACK, challenge))
        assert response.status_code == 303
        interaction = provider.endpoint + response.headers["location"]
        assert response.headers["location"].startswith("/interaction/")
        page = browser.get(interaction)
        assert page.status_code == 200
        for fragment in (
            "<title>Sign in</title>",
            'name="username"',
            'name="password"',
            'id="sign-in"',
            "alice-password",
        ):
            assert fragment in page.text
        wrong = browser.post(interaction + "/login", data={"username": "alice", "password": "no"})
        assert wrong.status_code == 401
        assert "Invalid username or password" in wrong.text
    with pytest.raises(SignInError):
        complete_sign_in(
            provider.authorization_url("web-app", CALLBACK, challenge), CALLBACK, password="wrong"
        )


def test_deny_sign_in_returns_access_denied(provider):
    _, challenge = pkce_pair()
    callback = deny_sign_in(provider.authorization_url("web-app", CALLBACK, challenge), CALLBACK)
    assert dict(httpx.URL(callback).params)["error"] == "access_denied"


def test_second_sign_in_reuses_the_session(provider, http):
    with httpx.Client() as browser:
        sign_in(http, provider, browser=browser)
        # the session cookie skips the login page; consent is automatic again (prompt=consent)
        tokens = sign_in(http, provider, browser=browser, username="nobody")
    assert claims(tokens["id_token"])["sub"] == "user-alice"


# --- refresh tokens -------------------------------------------------------------------------------


def test_refresh_rotation_and_reuse_revokes_the_grant(provider, http):
    provider.set_refresh_token_reuse(0)  # reuse is detected at once (Logto: after 3 s)
    first = sign_in(http, provider, client_id="spa-app")["refresh_token"]
    response = refresh(http, provider, first, client_id="spa-app")
    assert response.status_code == 200, response.text
    second = response.json()["refresh_token"]
    assert second != first
    assert "at_hash" not in claims(response.json()["id_token"])  # like Logto 1.42
    reused = refresh(http, provider, first, client_id="spa-app")
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_description"] == "grant request is invalid"
    assert reused.json()["code"] == "oidc.invalid_grant"
    assert refresh(http, provider, second, client_id="spa-app").json()["error"] == "invalid_grant"  # revoked


def test_rotation_follows_logtos_policy(provider, http):
    # A confidential client keeps its refresh token (and may present it again)...
    token = sign_in(http, provider)["refresh_token"]
    for _ in range(2):
        response = refresh(http, provider, token)
        assert response.status_code == 200 and response.json()["refresh_token"] == token
    # ...until 70 % of its lifetime has passed.
    # (whole seconds: 5 or 6 of 7 s is past 70 %, and before the token expires)
    provider.set_refresh_tokens("web-app", ttl=7)
    short = sign_in(http, provider)["refresh_token"]
    assert refresh(http, provider, short).json()["refresh_token"] == short
    time.sleep(5.05)
    rotated = refresh(http, provider, short).json()["refresh_token"]
    assert rotated != short
    # A public client gets a new one at every refresh; the admin switch forces either way.
    public = sign_in(http, provider, client_id="spa-app")["refresh_token"]
    assert refresh(http, provider, public, client_id="spa-app").json()["refresh_token"] != public
    provider.set_refresh_tokens("web-app", rotation="always")
    assert refresh(http, provider, token).json()["refresh_token"] != token


def test_rotated_refresh_token_reuse_leeway(provider, http):
    # Logto still accepts a rotated refresh token for 3 s (concurrent refreshes of one session).
    first = sign_in(http, provider, client_id="spa-app")["refresh_token"]
    second = refresh(http, provider, first, client_id="spa-app").json()["refresh_token"]
    again = refresh(http, provider, first, client_id="spa-app")
    assert again.status_code == 200 and again.json()["refresh_token"] not in (first, second)
    time.sleep(3.1)
    reused = refresh(http, provider, first, client_id="spa-app")
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_uri"] == "https://openid.sh/debug/invalid_grant"
    assert refresh(http, provider, second, client_id="spa-app").json()["error"] == "invalid_grant"


def test_client_without_rotation_keeps_its_refresh_token(provider, http):
    token = sign_in(http, provider, client_id="web-no-rotate")["refresh_token"]
    for _ in range(2):
        response = refresh(http, provider, token, client_id="web-no-rotate")
        assert response.status_code == 200 and response.json()["refresh_token"] == token


def test_client_without_refresh_grant_gets_no_refresh_token(provider, http):
    tokens = sign_in(http, provider, client_id="web-no-refresh")
    assert "refresh_token" not in tokens and "id_token" in tokens


def test_public_client_and_json_body(provider, http):
    tokens = sign_in(http, provider, client_id="spa-app")
    response = http.post(
        provider.token_endpoint,
        json={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "spa-app",
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["refresh_token"] != tokens["refresh_token"]


# --- resource and organization tokens -------------------------------------------------------------


def test_resource_jwt_scopes_follow_roles(provider, http):
    scope = "openid offline_access read:products write:products read:short"
    alice = sign_in(http, provider, scope=scope, resources=[f"{API},{SHORT_API}"])  # Logto splits
    response = refresh(http, provider, alice["refresh_token"], resource=API)
    assert response.status_code == 200, response.text
    header, payload = decode_jwt(response.json()["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "ES384" and header["kid"]
    assert payload["aud"] == API and payload["sub"] == "user-alice"
    assert payload["client_id"] == "web-app" and payload["iss"] == provider.issuer
    assert set(payload["scope"].split()) == {"read:products", "write:products"}
    assert response.json()["expires_in"] == 3600

    short = refresh(http, provider, response.json()["refresh_token"], resource=SHORT_API).json()
    assert short["expires_in"] == 2 and claims(short["access_token"])["scope"] == "read:short"

    bob = sign_in(http, provider, scope=scope, resources=[API], username="bob")
    bob_token = refresh(http, provider, bob["refresh_token"], resource=API).json()
    assert claims(bob_token["access_token"])["scope"] == "read:products"

    other = refresh(http, provider, bob_token["refresh_token"], resource=SHORT_API)
    assert other.status_code == 400 and other.json()["error"] == "invalid_target"


def test_organization_token(provider, http):
    scope = f"openid offline_access {ORGS_SCOPE} read:members write:members read:products"
    tokens = sign_in(http, provider, scope=scope, resources=[ORGS_RESOURCE, API])
    response = refresh(http, provider, tokens["refresh_token"], organization_id="org-acme")
    assert response.status_code == 200, response.text
    body = response.json()
    payload = claims(body["access_token"])
    assert payload["aud"] == "urn:logto:organization:org-acme"
    assert set(payload["scope"].split()) == {"read:members", "write:members"}
    assert body["expires_in"] == 3600

    globex = refresh(http, provider, body["refresh_token"], organization_id="org-globex").json()
    assert claims(globex["access_token"])["scope"] == "read:members"

    not_member = refresh(http, provider, globex["refresh_token"], organization_id="org-initech")
    assert not_member.status_code == 403
    assert not_member.json()["error"] == "access_denied"
    assert not_member.json()["error_description"] == "user is not a member of the organization"

    with_api = refresh(
        http, provider, globex["refresh_token"], organization_id="org-acme", resource=API
    ).json()
    api_claims = claims(with_api["access_token"])
    assert api_claims["aud"] == API and api_claims["organization_id"] == "org-acme"

    plain = sign_in(http, provider, scope="openid offline_access read:members")
    missing = refresh(http, provider, plain["refresh_token"], organization_id="org-acme")
    assert missing.status_code == 403 and missing.json()["error"] == "insufficient_scope"


def test_userinfo_claims(provider, http):
    scope = (
        "openid offline_access profile email phone custom_data identities roles "
        f"{ORGS_SCOPE} urn:logto:scope:organization_roles"
    )
    tokens = sign_in(http, provider, scope=scope, resources=[API])
    response = http.get(
        provider.userinfo_endpoint, headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["sub"] == "user-alice" and info["name"] == "Alice Liddell"
    assert info["username"] == "alice" and info["created_at"] == 1700000000000
    assert info["email_verified"] is True and info["phone_number"] == "+15555550101"
    assert info["custom_data"] == {"plan": "pro", "preferences": {"theme": "dark"}}
    assert info["identities"]["github"]["userId"] == "1001"
    assert info["sso_identities"][0]["issuer"] == "https://sso.acme.example"
    assert info["roles"] == ["product-admin"]
    assert info["organizations"] == ["org-acme", "org-globex"]
    assert info["organization_data"][0] == {
        "id": "org-acme",
        "name": "Acme Corp",
        "description": "Alice's company",
    }
    assert info["organization_roles"] == ["org-acme:admin", "org-globex:member"]
    # ID token: base claims plus the extended roles/organizations/organization_roles
    id_claims = claims(tokens["id_token"])
    assert id_claims["roles"] == ["product-admin"] and "organization_roles" in id_claims
    assert "custom_data" not in id_claims and "organization_data" not in id_claims

    api_token = refresh(http, provider, tokens["refresh_token"], resource=API).json()
    rejected = http.get(
        provider.userinfo_endpoint, headers={"Authorization": f"Bearer {api_token['access_token']}"}
    )
    assert rejected.status_code == 401 and rejected.json()["error"] == "invalid_token"


def test_end_session(provider, http):
    with httpx.Client() as browser:
        tokens = sign_in(http, provider, browser=browser)
        url = (
            provider.end_session_endpoint
            + "?"
            + str(
                httpx.QueryParams(
                    {
                        "client_id": "web-app",
                        "post_logout_redirect_uri": "http://127.0.0.1/",
                        "id_token_hint": tokens["id_token"],
                        "state": "bye",
                    }
                )
            )
        )
        assert complete_sign_out(url, client=browser) == "http://127.0.0.1/?state=bye"
        # the session is gone: the next sign-in shows the login page again
        with pytest.raises(SignInError):
            sign_in(http, provider, browser=browser, username="nobody")
    bad = http.get(
        provider.end_session_endpoint,
        params={"client_id": "web-app", "post_logout_redirect_uri": "http://evil.example/"},
    )
    assert bad.status_code == 400 and "post_logout_redirect_uri" in bad.json()["error_description"]


def test_extra_redirect_uris_and_loopback_ports(provider, http):
    verifier, challenge = pkce_pair()
    any_port = "http://127.0.0.1:5123/callback"  # web-app has loopbackAnyPort
    callback = complete_sign_in(provider.authorization_url("web-app", any_port, challenge), any_port)
    assert "code=" in callback
    custom = "http://127.0.0.1:7777/custom-cb"
    with httpx.Client() as browser:
        refused = browser.get(provider.authorization_url("web-no-refresh", custom, challenge))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_redirect_uri"
    added = provider.add_redirect_uris("web-no-refresh", [custom])
    assert custom in added["redirect_uris"]
    callback = complete_sign_in(provider.authorization_url("web-no-refresh", custom, challenge), custom)
    code = dict(httpx.URL(callback).params)["code"]
    response = token_request(
        http,
        provider,
        "web-no-refresh",
        grant_type="authorization_code",
        code=code,
        redirect_uri=custom,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text


# --- keys -----------------------------------------------------------------------------------------


def test_key_rotation_and_jwks_modes(provider, http):
    tokens = sign_in(http, provider)
    old_kid = decode_jwt(tokens["id_token"])[0]["kid"]
    info = provider.rotate_keys()
    assert info["kid"] != old_kid and info["kids"][:2] == [info["kid"], old_kid]
    published = {key["kid"] for key in http.get(provider.jwks_uri).json()["keys"]}
    assert {old_kid, info["kid"]} <= published
    refreshed = refresh(http, provider, tokens["refresh_token"]).json()  # grant survived rebuild
    assert decode_jwt(refreshed["id_token"])[0]["kid"] == info["kid"]

    provider.set_alg("RS256")
    rsa = refresh(http, provider, refreshed["refresh_token"]).json()
    assert decode_jwt(rsa["id_token"])[0]["alg"] == "RS256"
    provider.set_alg("ES384")

    provider.set_jwks_mode("strip_kid")
    keys = http.get(provider.jwks_uri).json()["keys"]
    assert len(keys) == 1 and "kid" not in keys[0] and keys[0]["crv"] == "P-384"
    provider.set_jwks_mode("empty")
    assert http.get(provider.jwks_uri).json() == {"keys": []}
    provider.reset()
    assert len(http.get(provider.jwks_uri).json()["keys"]) >= 4


def test_rs256_provider_start():
    with Provider().start(alg="RS256") as rsa, httpx.Client() as http:
        keys = http.get(rsa.jwks_uri).json()["keys"]
        assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["kid"]
        tokens = sign_in(http, rsa)
        assert decode_jwt(tokens["id_token"])[0]["alg"] == "RS256"


# --- ID token tampering ---------------------------------------------------------------------------


def hint_accepted(provider, http, id_token):
    """oidc-provider validates id_token_hint (signature, iss, aud, exp) at end-session."""
    response = http.get(provider.end_session_endpoint, params={"id_token_hint": id_token})
    return response.status_code == 200


def test_id_token_mutations(provider, http):
    tokens = sign_in(http, provider)
    kid = decode_jwt(tokens["id_token"])[0]["kid"]
    assert hint_accepted(provider, http, tokens["id_token"])
    refresh_token = tokens["refresh_token"]

    def next_id_token():
        nonlocal refresh_token
        response = refresh(http, provider, refresh_token).json()
        refresh_token = response["refresh_token"]
        return response["id_token"]

    # provider: valid signature, altered claims; the mutation is one-shot
    provider.mutate_next_id_token(claims={"sub": "someone-else"}, remove_claims=["username"])
    token = next_id_token()
    header, payload = decode_jwt(token)
    assert payload["sub"] == "someone-else" and "username" not in payload
    assert header["kid"] == kid and hint_accepted(provider, http, token)
    assert claims(next_id_token())["sub"] == "user-alice"

    for sign in ("attacker", "none", "hs256_public", "provider_no_kid"):
        provider.mutate_next_id_token(sign=sign)
        token = next_id_token()
        header, payload = decode_jwt(token)
        assert payload["sub"] == "user-alice"
        if sign == "attacker":
            assert header["kid"] == kid and header["alg"] == "ES384"
            assert not hint_accepted(provider, http, token)
        elif sign == "none":
            assert header["alg"] == "none" and token.endswith(".")
        elif sign == "hs256_public":
            assert header["alg"] == "HS256" and header["kid"] == kid
        else:
            assert "kid" not in header and header["alg"] == "ES384"

    # hs256_public with the JWK form: HMAC keyed with the public JWK's JSON bytes
    provider.mutate_next_id_token(sign="hs256_public", secret_form="jwk")
    signing_input, signature = next_id_token().rsplit(".", 1)
    public_jwk = next(k for k in provider.keys()["jwks"]["keys"] if k["kid"] == kid)
    secret = json.dumps(public_jwk, separators=(",", ":")).encode()
    expected = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64encode(expected).rstrip(b"=").decode() == signature


# --- faults and the request log -------------------------------------------------------------------


def test_fault_modes(provider, http):
    provider.fault("token", "status500", times=2)
    for _ in range(2):
        response = http.post(provider.token_endpoint, data={"grant_type": "refresh_token"})
        assert response.status_code == 500 and response.json()["error"] == "server_error"
    assert http.post(provider.token_endpoint, data={}).status_code == 400  # back to normal

    provider.fault("discovery", "html")
    response = http.get(provider.discovery_url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<html>")

    provider.fault("jwks", "invalid_json")
    response = http.get(provider.jwks_uri)
    assert response.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        response.json()

    provider.fault("userinfo", "hang")
    with pytest.raises(httpx.ReadTimeout):
        http.get(provider.userinfo_endpoint, timeout=0.5)

    provider.fault("discovery", "hang", delay_ms=300)
    started = time.monotonic()
    assert http.get(provider.discovery_url).json()["issuer"] == provider.issuer
    assert time.monotonic() - started >= 0.3

    assert provider.faults() == {}
    provider.fault("token", "status500", times=5)
    assert provider.faults()["token"]["remaining"] == 5
    provider.reset()
    assert provider.faults() == {}


def test_request_log(provider, http):
    verifier, challenge = pkce_pair()
    callback = complete_sign_in(provider.authorization_url("web-app", CALLBACK, challenge), CALLBACK)
    code = dict(httpx.URL(callback).params)["code"]
    provider.reset()
    http.post(
        provider.token_endpoint,
        auth=("web-app", SECRETS["web-app"]),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": verifier,
        },
    )
    http.get(provider.discovery_url)
    log = provider.requests(path="/oidc/token")
    assert len(log) == 1
    entry = log[0]
    assert entry["method"] == "POST" and entry["grant_type"] == "authorization_code"
    assert entry["status"] == 200 and entry["timestamp"]
    assert entry["form"]["code"] == token_hash(code)
    assert entry["form"]["code_verifier"] == token_hash(verifier)
    assert entry["form"]["redirect_uri"] == CALLBACK
    assert entry["authorization"] == {"scheme": "basic", "client_id": "web-app"}
    assert len(provider.requests()) == 2
    assert provider.requests(grant_type="refresh_token") == []


# --- phase 2: client credentials, token exchange, Management API ----------------------------------


def m2m_token(http, provider, client_id="m2m-app", **form):
    return token_request(http, provider, client_id, grant_type="client_credentials", **form)


def test_client_credentials(provider, http):
    response = m2m_token(http, provider, resource=MANAGEMENT_API, scope="all")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "all" and "refresh_token" not in body and "id_token" not in body
    header, payload = decode_jwt(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert payload["sub"] == "m2m-app" and payload["aud"] == MANAGEMENT_API

    no_scope = m2m_token(http, provider, resource=API).json()
    assert no_scope["scope"] == "" and "scope" not in claims(no_scope["access_token"])
    limited = m2m_token(http, provider, resource=API, scope="read:products delete:products")
    assert limited.json()["scope"] == "read:products"

    neither = m2m_token(http, provider, scope="all")
    assert neither.status_code == 400 and neither.json()["error"] == "invalid_target"

    org = m2m_token(http, provider, organization_id="org-acme", scope="read:members write:members")
    assert org.status_code == 200, org.text
    assert claims(org.json()["access_token"])["aud"] == "urn:logto:organization:org-acme"
    assert org.json()["scope"] == "read:members"
    denied = m2m_token(http, provider, organization_id="org-globex", scope="read:members")
    assert denied.status_code == 403 and denied.json()["error"] == "access_denied"

    not_allowed = token_request(http, provider, "web-app", grant_type="client_credentials", resource=API)
    assert not_allowed.status_code == 400
    assert not_allowed.json()["error_description"] == ("requested grant type is not allowed for this client")


def exchange(http, provider, subject_token, client_id="web-app", **form):
    return token_request(
        http,
        provider,
        client_id,
        grant_type=TOKEN_EXCHANGE,
        subject_token=subject_token,
        subject_token_type=PAT_TYPE,
        **form,
    )


def test_token_exchange_with_personal_access_token(provider, http):
    pat = "pat_alice_ci_0123456789abcdefABCDEF"
    opaque = exchange(http, provider, pat, scope="openid profile")
    assert opaque.status_code == 200, opaque.text
    body = opaque.json()
    assert set(body) == {"access_token", "expires_in", "scope", "token_type"}
    info = http.get(
        provider.userinfo_endpoint, headers={"Authorization": f"Bearer {body['access_token']}"}
    ).json()
    assert info["sub"] == "user-alice" and info["username"] == "alice"

    api = exchange(http, provider, pat, resource=API, scope="read:products write:products").json()
    assert claims(api["access_token"])["aud"] == API
    assert set(api["scope"].split()) == {"read:products", "write:products"}
    assert exchange(http, provider, pat, resource=API).json()["scope"] == ""  # no default scopes

    org = exchange(http, provider, pat, organization_id="org-acme", scope="read:members").json()
    assert claims(org["access_token"])["aud"] == "urn:logto:organization:org-acme"

    for bad in ("pat_alice_expired_0123456789abcdef", "pat_unknown"):
        response = exchange(http, provider, bad)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
        assert response.json()["error_description"] == "grant request is invalid"

    refused = exchange(http, provider, pat, client_id="spa-app")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
    assert refused.json()["error_description"] == ("requested grant type is not allowed for this client")


def test_personal_access_token_management_api(provider, http):
    token = m2m_token(http, provider, resource=MANAGEMENT_API, scope="all").json()["access_token"]
    api = httpx.Client(
        base_url=provider.endpoint + "/api/users", timeout=10.0, headers={"Authorization": f"Bearer {token}"}
    )
    with api:
        listed = api.get("/user-bob/personal-access-tokens")
        assert listed.status_code == 200
        assert [pat["name"] for pat in listed.json()] == ["bob-token"]
        assert listed.json()[0]["value"].startswith("pat_")

        future = int(time.time() * 1000) + 3_600_000
        created = api.post("/user-bob/personal-access-tokens", json={"name": "smoke", "expiresAt": future})
        assert created.status_code == 201
        pat = created.json()
        assert pat["value"].startswith("pat_") and pat["expiresAt"] == future
        assert pat["userId"] == "user-bob" and isinstance(pat["createdAt"], int)
        assert exchange(http, provider, pat["value"], scope="openid").status_code == 200

        assert api.post("/user-bob/personal-access-tokens", json={"name": "smoke"}).status_code == 422
        assert (
            api.post("/user-bob/personal-access-tokens", json={"name": "past", "expiresAt": 1000}).status_code
            == 400
        )
        assert api.get("/user-nobody/personal-access-tokens").status_code == 404

        renamed = api.patch(
            "/user-bob/personal-access-tokens", json={"currentName": "smoke", "name": "smoke-2"}
        )
        assert renamed.status_code == 200 and renamed.json()["name"] == "smoke-2"
        legacy = api.patch("/user-bob/personal-access-tokens/smoke-2", json={"name": "smoke-3"})
        assert legacy.status_code == 200 and legacy.json()["name"] == "smoke-3"

        assert (
            api.post("/user-bob/personal-access-tokens/delete", json={"name": "smoke-3"}).status_code == 204
        )
        assert (
            api.post("/user-bob/personal-access-tokens/delete", json={"name": "smoke-3"}).status_code == 404
        )
        assert exchange(http, provider, pat["value"]).json()["error"] == "invalid_grant"
        assert api.delete("/user-bob/personal-access-tokens/bob-token").status_code == 204
        assert api.get("/user-bob/personal-access-tokens").json() == []

    no_auth = http.get(provider.endpoint + "/api/users/user-bob/personal-access-tokens")
    assert no_auth.status_code == 401
    weak = m2m_token(http, provider, "m2m-limited", resource=MANAGEMENT_API, scope="all")
    assert weak.json()["scope"] == ""
    forbidden = http.get(
        provider.endpoint + "/api/users/user-bob/personal-access-tokens",
        headers={"Authorization": f"Bearer {weak.json()['access_token']}"},
    )
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "auth.forbidden"
