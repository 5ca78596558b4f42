"""The bearer guard answers the same in Flask, FastAPI and Django REST framework.

Each framework serves the same routes over its own guard (the Flask decorator, the FastAPI
dependency, the DRF authentication and permission classes), all wrapping ``logto_rs.guard``;
every check sends the development provider's real tokens and expects one answer from all three:
status, challenge, ``Retry-After`` and the ``{"error", "error_description"}`` body (FastAPI's
under ``detail``, its convention).

The routes: ``/api/products`` (scope ``read:products``), ``/api/products/delete`` (scope
``delete:products``), ``/api/orgs/<org>/products`` (an organization-scoped API token for the
organization in the URL), ``/api/admin`` (role ``product-admin`` in the ``roles`` claim) and
``/api/opaque`` (opaque tokens, verified by introspection).
"""

import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional

import httpx
import pytest
from fastapi_server import serve

import django_site
from conftest import WEB_APP, run, sign_in
from logto_rs import AccessTokenClaims, AccessTokenVerifier, MemoryStorage
from logto_rs.guard import bearer_token
from provider_harness import Provider, decode_jwt

django_site.setup()

# The Django test client's host is "testserver", not loopback: the site rightly warns about its cookie.
pytestmark = pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")

API = "https://api.example.com"
ORGS = "urn:logto:scope:organizations"
ADMIN = "product-admin"
FRAMEWORKS = ["flask", "fastapi", "drf"]


@dataclass
class Answer:
    """What a framework answered, in the same terms for all three."""

    status: int
    challenge: Optional[str]
    retry_after: Optional[str]
    body: Any


Call = Callable[[str, Optional[str]], Answer]
"""Send ``GET path`` with this ``Authorization`` value (``None``: no header)."""


@dataclass
class Verifiers:
    api: AccessTokenVerifier
    opaque: AccessTokenVerifier


def verifiers(provider: Provider) -> Verifiers:
    """Fresh verifiers (no keys yet) for the API, and for opaque tokens by introspection."""
    return Verifiers(
        api=AccessTokenVerifier(provider.endpoint, API),
        opaque=AccessTokenVerifier(provider.endpoint, API, introspectWith=WEB_APP),
    )


def org_from(args: Mapping[str, Any]) -> Any:
    return args["org_id"]


@contextmanager
def flask_app(checkers: Verifiers) -> Iterator[Call]:
    from flask import Flask, g

    from logto_rs.flask import require_access_token

    app = Flask(__name__)

    def answer() -> Any:
        claims = g.access_token_claims
        assert isinstance(claims, AccessTokenClaims)
        return {"sub": claims.sub}

    routes = {
        "/api/products": require_access_token("read:products", verifier=checkers.api),
        "/api/products/delete": require_access_token("delete:products", verifier=checkers.api),
        "/api/orgs/<org_id>/products": require_access_token(
            "read:products", organizationId=org_from, verifier=checkers.api
        ),
        "/api/admin": require_access_token(roles=[ADMIN], verifier=checkers.api),
        "/api/opaque": require_access_token(verifier=checkers.opaque),
    }
    for path, guard in routes.items():
        app.add_url_rule(path, path, guard(lambda **_: answer()))
    http = app.test_client()

    def call(path: str, authorization: Optional[str]) -> Answer:
        response = http.get(path, headers={} if authorization is None else {"Authorization": authorization})
        return Answer(
            response.status_code,
            response.headers.get("WWW-Authenticate"),
            response.headers.get("Retry-After"),
            response.get_json(),
        )

    yield call


@contextmanager
def fastapi_app(checkers: Verifiers) -> Iterator[Call]:
    from fastapi import Depends, FastAPI, Request

    from logto_rs.fastapi import require_access_token

    app = FastAPI()

    def route(path: str, guard: Callable[..., Any]) -> None:
        async def endpoint(claims: Annotated[AccessTokenClaims, Depends(guard)]) -> Any:
            return {"sub": claims.sub}

        app.get(path)(endpoint)

    def org(request: Request) -> Any:
        return org_from(request.path_params)

    route("/api/products", require_access_token(checkers.api, "read:products"))
    route("/api/products/delete", require_access_token(checkers.api, "delete:products"))
    route(
        "/api/orgs/{org_id}/products",
        require_access_token(checkers.api, "read:products", organization_id=org),
    )
    route("/api/admin", require_access_token(checkers.api, roles=[ADMIN]))
    route("/api/opaque", require_access_token(checkers.opaque))

    def call(path: str, authorization: Optional[str]) -> Answer:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = httpx.get(url + path, headers=headers)
        body = response.json()
        return Answer(
            response.status_code,
            response.headers.get("WWW-Authenticate"),
            response.headers.get("Retry-After"),
            body["detail"] if response.status_code >= 400 else body,
        )

    with serve(app) as url:
        yield call


@contextmanager
def drf_app(checkers: Verifiers) -> Iterator[Call]:
    from django.test import Client, override_settings
    from django.urls import path as route
    from rest_framework.request import Request
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from logto_rs.django.drf import HasOrganization, HasRoles, HasScopes, LogtoTokenAuthentication

    class ApiTokens(LogtoTokenAuthentication):
        def verifier(self) -> AccessTokenVerifier:
            return checkers.api

    class OpaqueTokens(LogtoTokenAuthentication):
        def verifier(self) -> AccessTokenVerifier:
            return checkers.opaque

    class Products(APIView):
        authentication_classes = [ApiTokens]
        permission_classes = [HasScopes]
        required_scopes = ["read:products"]

        def get(self, request: Request, **_: Any) -> Response:
            return Response({"sub": request.auth.sub})

    class DeleteProducts(Products):
        required_scopes = ["delete:products"]

    class OrganizationProducts(Products):
        permission_classes = [HasOrganization]
        organization_url_kwarg = "org_id"

    class Admin(Products):
        permission_classes = [HasRoles]
        required_roles = [ADMIN]

    class Opaque(Products):
        authentication_classes = [OpaqueTokens]
        required_scopes = []

    urls = types.ModuleType("bearer_conformance_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        route("api/products", Products.as_view()),
        route("api/products/delete", DeleteProducts.as_view()),
        route("api/orgs/<str:org_id>/products", OrganizationProducts.as_view()),
        route("api/admin", Admin.as_view()),
        route("api/opaque", Opaque.as_view()),
    ]

    def call(path: str, authorization: Optional[str]) -> Answer:
        headers = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
        with override_settings(ROOT_URLCONF=urls):
            response = Client().get(path, **headers)
        return Answer(
            response.status_code,
            response.headers.get("WWW-Authenticate"),
            response.headers.get("Retry-After"),
            response.json(),
        )

    yield call


APPS: dict[str, Callable[[Verifiers], Any]] = {"flask": flask_app, "fastapi": fastapi_app, "drf": drf_app}


@pytest.fixture(scope="module")
def tokens(provider: Provider) -> dict[str, str]:
    """Alice's tokens: the API (``read:products``, no roles claim), the API for org-acme, an
    organization token, an opaque one, and the API token with her role, re-signed by the
    provider's key as a custom JWT claims script would have it."""
    from logto_rs import LogtoClient, LogtoConfig

    def client(**fields: Any) -> LogtoClient:
        config = LogtoConfig(endpoint=provider.endpoint, appId=WEB_APP[0], appSecret=WEB_APP[1], **fields)
        signed_in = LogtoClient(config, storage=MemoryStorage())
        run(sign_in(signed_in))
        return signed_in

    api_client = client(scopes=["read:products", ORGS], resources=[API]).blocking
    api = api_client.getAccessToken(API) or ""
    with_role = provider.sign_jwt(
        {**decode_jwt(api)[1], "roles": [ADMIN, "viewer"]}, header={"typ": "at+jwt"}
    )
    opaque = client(scopes=["email"]).blocking.getAccessToken() or ""
    assert api.count(".") == 2 and opaque and opaque.count(".") != 2
    return {
        "api": api,
        "api-acme": api_client.getAccessToken(API, "org-acme") or "",
        "org": api_client.getOrganizationToken("org-acme") or "",
        "opaque": opaque,
        "admin": with_role,
        "forged": provider.sign_jwt({**decode_jwt(api)[1]}, header={"typ": "at+jwt"}, sign="attacker"),
    }


@pytest.fixture(scope="module")
def shared(provider: Provider) -> Verifiers:
    return verifiers(provider)


@pytest.fixture(scope="module", params=FRAMEWORKS)
def call(request: pytest.FixtureRequest, shared: Verifiers) -> Iterator[Call]:
    with APPS[request.param](shared) as served:
        yield served


def bearer(tokens: Mapping[str, str], name: str) -> str:
    return f"Bearer {tokens[name]}"


def refused(answer: Answer, status: int, error: str) -> str:
    """Check a refusal's status and body; return its challenge."""
    assert answer.status == status, answer
    assert answer.body["error"] == error and answer.body["error_description"], answer
    assert answer.challenge is not None and answer.challenge.startswith(f'Bearer error="{error}"'), answer
    return answer.challenge


def test_a_valid_token_reaches_the_view(call: Call, tokens: dict[str, str]) -> None:
    for authorization in (bearer(tokens, "api"), f"bearer  {tokens['api']}"):
        answer = call("/api/products", authorization)
        assert (answer.status, answer.body) == (200, {"sub": "user-alice"}), answer


@pytest.mark.parametrize("authorization", [None, "", "Basic d2ViLWFwcDpzZWNyZXQ="])
def test_no_bearer_token_is_401_with_a_bare_challenge(call: Call, authorization: Optional[str]) -> None:
    answer = call("/api/products", authorization)
    assert (answer.status, answer.challenge) == (401, "Bearer"), answer  # RFC 6750 §3.1


@pytest.mark.parametrize(
    ("token", "check"),
    [("garbage", "malformed"), ("a.b.c", "malformed"), ("forged", "signature")],
)
def test_a_bad_token_is_401(call: Call, tokens: dict[str, str], token: str, check: str) -> None:
    sent = tokens.get(token, token)
    answer = call("/api/products", f"Bearer {sent}")
    assert check in refused(answer, 401, "invalid_token")
    assert sent not in str(answer.body)


def test_a_token_for_another_audience_is_401(call: Call, tokens: dict[str, str]) -> None:
    challenge = refused(call("/api/products", bearer(tokens, "org")), 401, "invalid_token")
    assert "(aud)" in challenge


def test_a_missing_scope_is_403_naming_the_scopes(call: Call, tokens: dict[str, str]) -> None:
    assert refused(call("/api/products/delete", bearer(tokens, "api")), 403, "insufficient_scope") == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'scope(s): delete:products", scope="delete:products"'
    )


def test_organization_routes(call: Call, tokens: dict[str, str]) -> None:
    assert call("/api/orgs/org-acme/products", bearer(tokens, "api-acme")).status == 200
    challenge = refused(
        call("/api/orgs/org-globex/products", bearer(tokens, "api-acme")), 403, "insufficient_scope"
    )
    assert "required organization" in challenge


def test_roles(call: Call, tokens: dict[str, str]) -> None:
    answer = call("/api/admin", bearer(tokens, "admin"))
    assert (answer.status, answer.body) == (200, {"sub": "user-alice"}), answer
    challenge = refused(call("/api/admin", bearer(tokens, "api")), 403, "insufficient_scope")
    assert challenge == (
        'Bearer error="insufficient_scope", error_description="the token lacks the required '
        'role(s): product-admin"'
    )


def test_opaque_tokens_are_introspected(call: Call, tokens: dict[str, str]) -> None:
    answer = call("/api/opaque", bearer(tokens, "opaque"))
    assert (answer.status, answer.body) == (200, {"sub": "user-alice"}), answer
    refused(call("/api/opaque", "Bearer unknown-opaque-token-0123456789"), 401, "invalid_token")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize(
    ("endpoint", "route", "token"),
    [
        ("discovery", "/api/products", "api"),
        ("jwks", "/api/products", "api"),
        ("introspection", "/api/opaque", "opaque"),
    ],
)
def test_a_provider_outage_is_503_with_retry_after(
    provider: Provider, tokens: dict[str, str], framework: str, endpoint: str, route: str, token: str
) -> None:
    with APPS[framework](verifiers(provider)) as call:  # no keys cached yet
        provider.fault(endpoint, "status500", times=10)
        answer = call(route, bearer(tokens, token))
        assert (answer.status, answer.retry_after, answer.challenge) == (503, "5", None), answer
        assert answer.body == {
            "error": "temporarily_unavailable",
            "error_description": "the identity provider is unavailable (response.unexpected)",
        }


def test_the_bearer_token_is_read_from_the_header() -> None:
    assert bearer_token(None) is None and bearer_token("") is None
    assert bearer_token("Basic abc") is None and bearer_token("Bearerabc") is None
    assert bearer_token("Bearer") == "" and bearer_token("BEARER  abc ") == "abc"
