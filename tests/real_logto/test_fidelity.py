"""Fidelity: the same probes against the real Logto and the development provider (tests/provider);
a test fails when their answers differ.

The development provider answers as Logto 1.42 does. Against a Logto that does not advertise the
device flow (1.37.1), the probes leave out what that generation does differently (its ID tokens'
`at_hash` and `typ` header), and a test of its own checks that part
(`test_id_tokens_carry_at_hash_and_typ_where_the_device_flow_is_not_advertised`).

Each probe sends raw requests (no SDK) and reduces the answers to what must match: the discovery
fields the SDK reads, the shape of tokens (JWS headers, claim names), rotation, error bodies and
token-exchange answers. Values that differ by nature (ids, secrets, ports) are left out or
replaced by their role ("<alice>", "<org>").
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from conftest import DEVICE_FLOW, RealLogto, experience_sign_in, jwt_parts
from logto_rs import LogtoM2MClient, LogtoM2MConfig
from provider_harness import Provider, complete_sign_in, pkce_pair

SCOPE = "openid offline_access profile email urn:logto:scope:organizations"
API = "https://api.example.com"
SHORT = "https://short.example.com"
UNKNOWN = "https://unknown.example.com"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
# Profile claims that are present only when the user's profile has them: the seeds differ there.
PROFILE_DATA = {
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
}


# What Logto before the device flow (1.37.1) puts in ID tokens and 1.42 does not.
OLDER_ID_TOKEN_CLAIMS = {"at_hash"}
OLDER_ID_TOKEN_HEADER = {"typ"}


def claim_names(token: str, server: Server) -> list[str]:
    return sorted(set(jwt_parts(token)[1]) - PROFILE_DATA - server.left_out)


@dataclass
class Server:
    """One server under probe, with the ids of its equivalent apps, users and organization."""

    name: str
    endpoint: str
    web: tuple[str, str]  # confidential, token exchange allowed
    web_no_exchange: tuple[str, str]
    public: str  # public client (rotates at every refresh)
    m2m: tuple[str, str]
    redirect_uri: str
    alice: str
    organization: str
    sign_in: Callable[[str, str], str]  # (authorization URL, username) -> callback URL
    device: str  # a native app with the device flow ("" where the server has none)
    # ID token claim and header names left out of the comparison (see the module docstring).
    left_out: frozenset[str] = frozenset()

    @property
    def issuer(self) -> str:
        return self.endpoint + "/oidc"

    def token(self, app: str, **form: str) -> httpx.Response:
        if app == "public":
            return httpx.post(self.issuer + "/token", data={**form, "client_id": self.public}, timeout=10)
        auth = {"web": self.web, "web_no_exchange": self.web_no_exchange, "m2m": self.m2m}[app]
        return httpx.post(self.issuer + "/token", data=form, auth=auth, timeout=10)

    def authorize(
        self, app: str, username: str = "alice", resources: tuple[str, ...] = (API,)
    ) -> dict[str, Any]:
        """Authorization code + PKCE like the SDK; returns the token response."""
        client_id = self.public if app == "public" else self.web[0]
        verifier, challenge = pkce_pair()
        params = [
            ("client_id", client_id),
            ("redirect_uri", self.redirect_uri),
            ("response_type", "code"),
            ("scope", SCOPE),
            ("state", "probe-state"),
            ("nonce", "probe-nonce"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
            *(("resource", r) for r in resources),
        ]
        callback = self.sign_in(self.issuer + "/auth?" + urlencode(params), username)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        response = self.token(
            app,
            grant_type="authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=verifier,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def create_pat(self) -> tuple[str, Callable[[], None]]:
        api = LogtoM2MClient(LogtoM2MConfig(endpoint=self.endpoint, appId=self.m2m[0], appSecret=self.m2m[1]))
        name = f"fidelity-{time.time_ns()}"
        created = api.blocking.managementApi.createPersonalAccessToken(self.alice, name)
        return created.value, lambda: api.blocking.managementApi.deletePersonalAccessToken(self.alice, name)


@pytest.fixture(scope="module")
def servers(logto: RealLogto, provider: Provider) -> dict[str, Server]:
    older = DEVICE_FLOW not in logto.discovery
    left_out = frozenset(OLDER_ID_TOKEN_CLAIMS | OLDER_ID_TOKEN_HEADER) if older else frozenset()
    real = Server(
        name="logto",
        endpoint=logto.endpoint,
        web=logto.web,
        web_no_exchange=logto.web_no_exchange,
        public=logto.native,
        m2m=logto.m2m,
        redirect_uri="http://127.0.0.1:5000/callback",
        alice=logto.user_id("alice"),
        organization=logto.organization_id,
        sign_in=lambda url, user: experience_sign_in(url, logto, user),
        device=logto.device or "",
        left_out=left_out,
    )
    dev = Server(
        name="dev",
        endpoint=provider.endpoint,
        web=("web-app", "web-app-secret"),
        web_no_exchange=("web-no-rotate", "web-no-rotate-secret"),
        public="spa-app",
        m2m=("m2m-app", "m2m-app-secret"),
        redirect_uri="http://127.0.0.1/callback",
        alice="user-alice",
        organization="org-acme",
        sign_in=lambda url, user: complete_sign_in(url, "http://127.0.0.1/callback", username=user),
        device="cli-app",
        left_out=left_out,
    )
    return {"logto": real, "dev": dev}


def both(servers: dict[str, Server], probe: Callable[[Server], Any]) -> Any:
    """Run `probe` on both servers, require the same observation and return it."""
    real, dev = probe(servers["logto"]), probe(servers["dev"])
    assert dev == real, f"development provider differs from the real Logto:\n logto: {real}\n   dev: {dev}"
    return real


def shape(token: str, server: Server) -> dict[str, Any]:
    """A JWS reduced to its header fields, its claim names and the claims with known values."""
    header, payload = jwt_parts(token)
    known = {
        "iss": payload.get("iss") == server.issuer,
        "sub": {server.alice: "<alice>", server.web[0]: "<web>", server.public: "<public>"}.get(
            payload.get("sub", ""), payload.get("sub")
        ),
        "aud": str(payload.get("aud", ""))
        .replace(server.organization, "<org>")
        .replace(server.web[0], "<web>"),
        "scope": sorted(str(payload.get("scope", "")).split()),
        "lifetime": payload["exp"] - payload["iat"] if "exp" in payload else None,
        "organization_id": payload.get("organization_id") == server.organization
        if "organization_id" in payload
        else None,
    }
    return {
        "alg": header["alg"],
        "typ": header.get("typ"),
        "kid": "kid" in header,
        "claims": sorted(payload),
        **known,
    }


def error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    return {
        "status": response.status_code,
        **{k: body.get(k) for k in ("code", "message", "error", "error_uri")},
        "keys": sorted(body),
    }


# --- the probes ----------------------------------------------------------------------------------


def test_discovery_fields_the_sdk_reads(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        doc = httpx.get(server.issuer + "/.well-known/openid-configuration", timeout=10).json()
        paths = {
            key: str(doc.get(key, "")).replace(server.endpoint, "")
            for key in (
                "issuer",
                "authorization_endpoint",
                "token_endpoint",
                "userinfo_endpoint",
                "jwks_uri",
                "end_session_endpoint",
                "revocation_endpoint",
                "introspection_endpoint",
            )
        }
        keys = httpx.get(doc["jwks_uri"], timeout=10).json()["keys"]
        return {
            **paths,
            "pkce": doc.get("code_challenge_methods_supported"),
            "es384": "ES384" in doc.get("id_token_signing_alg_values_supported", []),
            "grants": sorted(
                set(doc.get("grant_types_supported", []))
                & {"authorization_code", "refresh_token", "client_credentials", EXCHANGE}
            ),
            "signing_keys": sorted({(k["kty"], k.get("crv"), k.get("alg"), "kid" in k) for k in keys}),
        }

    both(servers, probe)


def test_code_exchange_tokens_and_claims(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        body = server.authorize("web")
        id_header, id_claims = jwt_parts(body["id_token"])
        return {
            "response": sorted(body),
            "token_type": body["token_type"],
            "opaque_access_token": body["access_token"].count(".") != 2,
            "id_token_header": sorted(set(id_header) - server.left_out),
            "id_token_claims": claim_names(body["id_token"], server),
            "nonce": id_claims["nonce"],
            "sub": id_claims["sub"] == server.alice,
        }

    both(servers, probe)


def test_refresh_grant_tokens(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        refresh_token = server.authorize("web")["refresh_token"]

        def refresh(**params: str) -> dict[str, Any]:
            response = server.token("web", grant_type="refresh_token", refresh_token=refresh_token, **params)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            return body

        plain = refresh()
        api = refresh(resource=API)
        org = refresh(organization_id=server.organization)
        scoped = refresh(resource=API, organization_id=server.organization)
        return {
            "response": sorted(plain),
            "refresh_id_token_claims": claim_names(plain["id_token"], server),
            "plain_scope": sorted(plain["scope"].split()),
            "api": shape(api["access_token"], server),
            "api_response": sorted(api),
            "api_scope": api["scope"],
            "organization": shape(org["access_token"], server),
            "organization_scoped_api": shape(scoped["access_token"], server),
        }

    both(servers, probe)


def test_rotation(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        web = server.authorize("web")["refresh_token"]
        public = server.authorize("public")["refresh_token"]
        web_again = server.token("web", grant_type="refresh_token", refresh_token=web).json()["refresh_token"]
        rotated = server.token("public", grant_type="refresh_token", refresh_token=public).json()[
            "refresh_token"
        ]
        within_leeway = server.token("public", grant_type="refresh_token", refresh_token=public)
        time.sleep(3.2)
        after_leeway = server.token("public", grant_type="refresh_token", refresh_token=public)
        latest = server.token("public", grant_type="refresh_token", refresh_token=rotated)
        return {
            "confidential_keeps": web_again == web,
            "public_rotates": rotated != public,
            "reuse_within_3s": within_leeway.status_code,
            "reuse_after_3s": error(after_leeway),
            "grant_revoked": latest.json().get("error"),
        }

    observed = both(servers, probe)
    assert (
        observed["confidential_keeps"] and observed["public_rotates"] and observed["reuse_within_3s"] == 200
    )


def test_error_bodies(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        alice = server.authorize("web")["refresh_token"]
        bob = server.authorize("web", "bob")["refresh_token"]
        no_secret = httpx.post(
            server.issuer + "/token",
            data={"grant_type": "refresh_token", "refresh_token": alice},
            auth=(server.web[0], "wrong-secret"),
            timeout=10,
        )
        return {
            "unknown_refresh_token": error(
                server.token("web", grant_type="refresh_token", refresh_token="nope")
            ),
            "unknown_resource": error(
                server.token("web", grant_type="refresh_token", refresh_token=alice, resource=UNKNOWN)
            ),
            "not_a_member": error(
                server.token(
                    "web", grant_type="refresh_token", refresh_token=bob, organization_id=server.organization
                )
            ),
            "wrong_secret": error(no_secret),
            "unsupported_grant": error(
                server.token("web", grant_type="password", username="a", password="b")
            ),
            "plain_oauth_body": sorted(
                httpx.post(
                    server.issuer + "/token?parse_error=false",
                    data={"grant_type": "refresh_token", "refresh_token": "nope"},
                    auth=server.web,
                    timeout=10,
                ).json()
            ),
        }

    both(servers, probe)


def test_refused_refresh_and_the_public_clients_token(servers: dict[str, Server]) -> None:
    """Which refusals consume a rotating refresh token: `resource` is checked after rotation,
    organization membership before."""

    def probe(server: Server) -> dict[str, Any]:
        cases = {
            "unknown_resource": ("alice", {"resource": UNKNOWN}),
            "resource_not_granted": ("alice", {"resource": SHORT}),
            "not_a_member": ("bob", {"organization_id": server.organization}),
        }
        tokens = {
            name: server.authorize("public", user, resources=(API,))["refresh_token"]
            for name, (user, _) in cases.items()
        }
        refused = {
            name: server.token(
                "public", grant_type="refresh_token", refresh_token=tokens[name], **params
            ).status_code
            for name, (_, params) in cases.items()
        }
        time.sleep(3.2)  # past the reuse leeway: a consumed token is now refused
        return {
            name: (
                refused[name],
                server.token("public", grant_type="refresh_token", refresh_token=tokens[name]).status_code,
            )
            for name in cases
        }

    # (refusal status, status of the same refresh token presented again after the leeway)
    assert both(servers, probe) == {
        "unknown_resource": (400, 400),
        "resource_not_granted": (400, 400),
        "not_a_member": (403, 200),
    }


def test_token_exchange_answers(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        pat, delete = server.create_pat()
        try:
            form = {
                "grant_type": EXCHANGE,
                "subject_token": pat,
                "subject_token_type": "urn:logto:token-type:personal_access_token",
            }
            granted = server.token("web", **form, resource=API, scope="read:products")
            assert granted.status_code == 200, granted.text
            body = granted.json()
            organization = server.token(
                "web", **form, organization_id=server.organization, scope="read:members"
            )
            return {
                "response": sorted(body),
                "issued_token_type": body.get("issued_token_type"),
                "scope": body.get("scope"),
                "token": shape(body["access_token"], server),
                "organization": shape(organization.json()["access_token"], server),
                "no_scope_asked": server.token("web", **form, resource=API).json().get("scope"),
                "not_allowed": error(server.token("web_no_exchange", **form, resource=API)),
                "unknown_pat": error(
                    server.token("web", **{**form, "subject_token": "pat_unknown"}, resource=API)
                ),
                "public_client": error(server.token("public", **form, resource=API)),
            }
        finally:
            delete()

    both(servers, probe)


def test_impersonation_answers(servers: dict[str, Server]) -> None:
    impersonation = "urn:logto:token-type:impersonation_token"
    access_token = "urn:ietf:params:oauth:token-type:access_token"

    def probe(server: Server) -> dict[str, Any]:
        m2m = LogtoM2MClient(
            LogtoM2MConfig(endpoint=server.endpoint, appId=server.m2m[0], appSecret=server.m2m[1])
        )
        bearer = {"Authorization": f"Bearer {m2m.blocking.getManagementApiToken().accessToken}"}

        def create(**body: Any) -> httpx.Response:
            return httpx.post(server.endpoint + "/api/subject-tokens", json=body, headers=bearer, timeout=10)

        def exchange(app: str, subject: str, token_type: str = impersonation, **form: str) -> httpx.Response:
            return server.token(
                app, grant_type=EXCHANGE, subject_token=subject, subject_token_type=token_type, **form
            )

        created = create(userId=server.alice, context={"ticket": "T-1"})
        subject = created.json()["subjectToken"]
        granted = exchange("web", subject, resource=API, scope="read:products read:nothing")
        assert granted.status_code == 200, granted.text
        body = granted.json()
        unused = create(userId=server.alice).json()["subjectToken"]
        return {
            "created": (
                created.status_code,
                sorted(created.json()),
                subject[:4],
                created.json()["expiresIn"],
            ),
            "response": sorted(body),
            "scope": body["scope"],
            "token": shape(body["access_token"], server),
            "reused": error(exchange("web", subject, resource=API)),
            "not_allowed": error(exchange("web_no_exchange", unused)),
            "bad_actor": error(exchange("web", unused, actor_token="x", actor_token_type=access_token)),
            "older_type": sorted(exchange("web", unused, access_token).json()),
            "unknown_user": [create(userId="no-such-user").status_code, create(userId="x").json()["code"]],
            "context_not_object": [create(userId=server.alice, context=[1]).json()["code"]],
            "no_user": [create().status_code, create().json()["code"]],
        }

    both(servers, probe)


def test_client_credentials_answers(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        # (delete:products is in neither app's roles: it must not be granted)
        ok = server.token(
            "m2m", grant_type="client_credentials", resource=API, scope="read:products delete:products"
        )
        assert ok.status_code == 200, ok.text
        body = ok.json()
        org = server.token(
            "m2m", grant_type="client_credentials", organization_id=server.organization, scope="read:members"
        )
        return {
            "response": sorted(body),
            "scope": body.get("scope"),
            "claims": sorted(jwt_parts(body["access_token"])[1]),
            "organization": org.status_code,
            "no_resource": error(server.token("m2m", grant_type="client_credentials", scope="read:products")),
            "not_m2m": error(server.token("web", grant_type="client_credentials", resource=API)),
        }

    both(servers, probe)


@pytest.mark.advertises(DEVICE_FLOW)
def test_device_authorization_answers(servers: dict[str, Server]) -> None:
    def probe(server: Server) -> dict[str, Any]:
        doc = httpx.get(server.issuer + "/.well-known/openid-configuration", timeout=10).json()
        started = httpx.post(
            doc[DEVICE_FLOW], data={"client_id": server.device, "scope": "openid offline_access"}, timeout=10
        )
        assert started.status_code == 200, started.text
        body = started.json()
        pending = server.token(
            "public",
            grant_type="urn:ietf:params:oauth:grant-type:device_code",
            device_code=body["device_code"],
            client_id=server.device,
        )
        not_enabled = httpx.post(
            doc[DEVICE_FLOW], data={"client_id": server.public, "scope": "openid"}, timeout=10
        )
        return {
            "endpoint": doc[DEVICE_FLOW].replace(server.endpoint, ""),
            "grant": "urn:ietf:params:oauth:grant-type:device_code" in doc.get("grant_types_supported", []),
            "response": sorted(body),
            "verification_uri": body["verification_uri"].replace(server.endpoint, ""),
            "verification_uri_complete": body["verification_uri_complete"]
            .replace(server.endpoint, "")
            .replace(body["user_code"], "<code>"),
            "user_code": [len(part) for part in body["user_code"].split("-")],
            "expires_in": body["expires_in"],
            "pending": error(pending),
            "not_enabled": error(not_enabled),
        }

    observed = both(servers, probe)
    assert observed["verification_uri"] == "/device" and "interval" not in observed["response"]


@pytest.mark.lacks(DEVICE_FLOW)
def test_id_tokens_carry_at_hash_and_typ_where_the_device_flow_is_not_advertised(
    servers: dict[str, Server],
) -> None:
    """What the comparison leaves out on 1.37.1, checked against the real server alone."""
    real = servers["logto"]
    body = real.authorize("web")
    header, claims = jwt_parts(body["id_token"])
    assert header.get("typ") == "JWT" and "at_hash" in claims
    refreshed = real.token("web", grant_type="refresh_token", refresh_token=body["refresh_token"]).json()
    assert "at_hash" in jwt_parts(refreshed["id_token"])[1]
