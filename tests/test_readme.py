"""Every Python snippet in README.md and in the documentation (docs/) runs, as written, against
the development provider.

Each fenced ``python`` block is one test, named after its section (section titles are unique
across the documents). A section declares what the
reader is assumed to have (``preamble``), which placeholders stand for the development provider
(``replace``: each must occur in the snippet), what the user does in a browser between two lines
(``after``: statements run after the line that contains the key) and what must then hold
(``check``). A snippet without a declaration, or a declaration without a snippet, fails: the README
and the docs cannot grow code that nobody runs. Tracebacks point at the document's own lines.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provider_harness import Provider, complete_sign_in

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

# What the snippets call the tenant and the app, and what they are here.
TENANT = {'"https://your-tenant.logto.app"': "provider.endpoint"}
APP = {'"your-app-id"': '"web-app"'}
SECRET = {'"your-app-secret"': '"web-app-secret"'}
WEB_APP_CONFIG = """
from logto_rs import LogtoConfig
config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
"""

# A signed-in user (alice) with an API token and an organization token, as the sections after
# the Quick start assume.
SIGNED_IN = """
from logto_rs import LogtoClient, LogtoConfig, UserInfoScope
config = LogtoConfig(
    endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret",
    scopes=[UserInfoScope.email, UserInfoScope.organizations, "read:products"],
    resources=["https://api.example.com"],
)
client = LogtoClient(config)
await client.handleSignInCallback(
    complete_sign_in(await client.signIn(REDIRECT_URI), REDIRECT_URI, username="alice")
)
token = await client.getAccessToken("https://api.example.com")
tokens = [token] * 3
org_token = await client.getOrganizationToken("org-acme")
"""

# Django configured with the test site's settings (tests/django_site), as the Django sections assume.
DJANGO = """
import django_site
django_site.setup()
"""

# A session key in the environment, as the encrypted sessions' sections assume.
SESSION_KEY = """
import os
from logto_rs.sessions import generate_key
os.environ["SESSION_KEY"] = generate_key()
"""


@dataclass
class Setup:
    preamble: str = ""
    replace: dict[str, str] = field(default_factory=dict)
    after: dict[str, str] = field(default_factory=dict)
    check: str = ""


# Keyed by section title; the n-th block (n > 1) of a section is "Title (n)".
QUICK_START_PREAMBLE = """
from logto_rs import MemoryStorage
my_session_storage = MemoryStorage()
provider.add_redirect_uris("web-app", ["https://app.example/callback"], ["https://app.example/"])
"""
QUICK_START_AFTER = {
    "url = await client.signIn(": 'request_url = complete_sign_in(url, "https://app.example/callback")'
}

SETUPS: dict[str, Setup] = {
    "Any Python app": Setup(
        preamble=QUICK_START_PREAMBLE,
        replace={**TENANT, **APP, **SECRET},
        after=QUICK_START_AFTER,
        check="""
from provider_harness import decode_jwt
assert decode_jwt(token)[1]["sub"] == "user-alice"
assert end_session_url.startswith(provider.issuer + "/session/end?")
assert not client.isAuthenticated() and my_session_storage.get("idToken") is None
""",
    ),
    "A Flask, FastAPI or Django site": Setup(
        preamble=WEB_APP_CONFIG,
        check="""
response = app.test_client().get("/me")
assert response.status_code == 302 and "/sign-in" in response.headers["Location"], response
""",
    ),
    "An API that accepts Logto access tokens": Setup(
        preamble=SIGNED_IN,
        replace=TENANT,
        check='assert claims.sub == "user-alice" and claims.aud == "https://api.example.com"',
    ),
    "A service, a script or a command line": Setup(
        replace={**TENANT, '"your-m2m-app-id"': '"m2m-app"', '"your-m2m-app-secret"': '"m2m-app-secret"'},
        check='assert token.accessToken and "read:products" in token.scopes',
    ),
    "Quick start": Setup(
        preamble=QUICK_START_PREAMBLE,
        replace={**TENANT, **APP, **SECRET},
        after=QUICK_START_AFTER,
        check="""
assert end_session_url.startswith(provider.issuer + "/session/end?")
assert not client.isAuthenticated() and my_session_storage.get("idToken") is None
""",
    ),
    "Flask": Setup(
        preamble=WEB_APP_CONFIG,
        replace={"redis.Redis()": "redis.Redis.from_url(redis_url)"},
        check="""
response = app.test_client().get("/protected/userinfo")
assert response.status_code == 302 and "/sign-in" in response.headers["Location"], response
""",
    ),
    "Flask (2)": Setup(
        preamble=WEB_APP_CONFIG
        + "\nfrom flask import Flask\nfrom logto_rs.flask import LogtoFlask\n"
        + "app = Flask(__name__)\napp.secret_key = 'k'\nLogtoFlask(app, config)",
        check="""
assert app.test_client().get("/dashboard").get_json() == {"signed_in": False}
""",
    ),
    "Django": Setup(
        preamble=DJANGO,
        replace={**TENANT, **APP, **SECRET},
        check="""
from logto_rs.django.conf import LogtoSettings
assert LogtoSettings.from_dict(LOGTO).config.endpoint == provider.endpoint
assert "logto_rs.django" in INSTALLED_APPS and "logto_rs.django.middleware.LogtoMiddleware" in MIDDLEWARE
assert [p.name for p in urlpatterns[0].url_patterns] == [
    "sign_in", "sign_up", "callback", "sign_out", "backchannel_logout"
]
""",
    ),
    "Django (2)": Setup(
        preamble=DJANGO,
        check="""
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
request = RequestFactory().get("/orders/")
request.user = AnonymousUser()
response = orders(request)
assert response.status_code == 302 and response["Location"] == "/auth/sign-in/?next=/orders/"
""",
    ),
    "Django (3)": Setup(
        preamble=SIGNED_IN + DJANGO,
        check="""
from django.conf import settings
from django.test import RequestFactory, override_settings
logto = {**settings.LOGTO, "ENDPOINT": provider.endpoint, "AUDIENCE": "https://api.example.com"}
with override_settings(LOGTO=logto):
    accepted = Products.as_view()(RequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
    refused = Products.as_view()(RequestFactory().get("/"))
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    no_role = DeleteProducts.as_view()(RequestFactory().delete("/", **bearer))  # alice has no roles claim
assert accepted.status_code == 200 and accepted.data == {"user": "user-alice"}, accepted.data
assert refused.status_code == 401 and refused["WWW-Authenticate"] == "Bearer"
assert no_role.status_code == 403 and "product-admin" in no_role["WWW-Authenticate"], no_role.data
""",
    ),
    "FastAPI": Setup(
        preamble=SIGNED_IN,
        replace={**TENANT, '"redis://localhost:6379/0"': "redis_url"},
        check="""
import httpx
from fastapi_server import serve
with serve(app) as url, httpx.Client(base_url=url) as http:
    anonymous = http.get("/me", headers={"Accept": "text/html"})
    assert anonymous.status_code == 302, anonymous.text
    assert anonymous.headers["Location"] == "/sign-in?next=%2Fme"
    answer = http.get("/products", headers={"Authorization": f"Bearer {token}"})
    assert answer.json() == {"user": "user-alice"}
    refused = http.get("/products")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
""",
    ),
    "Tokens for your APIs and organizations": Setup(
        preamble=SIGNED_IN,
        replace={'"org-id"': '"org-acme"'},
        check="""
assert token and org_token and claims.aud == "https://api.example.com"
assert info.sub == "user-alice" and info.organizations
assert not client.isAuthenticated()
""",
    ),
    "Everything at once: getContext": Setup(
        preamble=SIGNED_IN,
        check="""
assert user == "user-alice" and products_token == token
assert org_tokens["org-acme"] == org_token and set(org_tokens) == set(context.claims.organizations)
""",
    ),
    "Scripts and CLIs": Setup(
        preamble="""
import tempfile, threading
from provider_harness import complete_device_sign_in
provider.set_device_flow(interval=1)
token_dir = tempfile.mkdtemp()
""",
        replace={
            **TENANT,
            '"your-cli-app-id"': '"cli-app"',
            "open_token_store(config.endpoint, config.appId)": (
                'open_token_store(config.endpoint, config.appId, "file", token_dir)'
            ),
        },
        after={
            'print(f"Open': "uri = sign_in.verificationUriComplete\n"
            "threading.Thread(target=complete_device_sign_in, args=(uri,)).start()"
        },
        check="""
assert info.sub == "user-alice" and token
assert client.getIdTokenClaims().sub == "user-alice"
assert await client.getAccessToken("https://api.example.com") == token
""",
    ),
    "Machine tokens, personal access tokens and the command line": Setup(
        preamble=SIGNED_IN + '\npat = "pat_alice_ci_0123456789abcdefABCDEF"',
        replace={
            '"https://tenant.logto.app"': "provider.endpoint",
            'appId="…"': 'appId="m2m-app"',
            'appSecret="…"': 'appSecret="m2m-app-secret"',
            '"org-id"': '"org-acme"',
            '"user-id"': '"user-bob"',
        },
        check="""
assert result.accessToken and "read:products" in result.scopes
assert token.accessToken and org_token.accessToken and admin.accessToken
assert created.value and all(t.name != "ci-2024" for t in await api.listPersonalAccessTokens("user-bob"))
""",
    ),
    "The Management API": Setup(
        replace={**TENANT, '"your-m2m-app-id"': '"m2m-app"', '"your-m2m-app-secret"': '"m2m-app-secret"'},
        check="""
assert page.total == 3 and len(page) == 3 and user.id == page[0].id
assert sorted(u.username for u in everyone) == ["alice", "bob", "carol"]
assert all(t.value not in repr(t) for t in tokens) and code == "entity.not_exists_with_id"
""",
    ),
    "The Account API": Setup(
        preamble=SIGNED_IN,
        check="""
assert (me.id, me.username, me.primaryEmail) == ("user-alice", "alice", "alice@example.com")
""",
    ),
    "Protect your API": Setup(
        preamble=SIGNED_IN,
        replace={**TENANT, '"org-id"': '"org-acme"'},
        check="""
assert claims.sub == "user-alice" and claims.aud == "https://api.example.com"
assert [type(result).__name__ for result in results] == ["AccessTokenClaims"] * 3
""",
    ),
    "Protect your API (2)": Setup(
        preamble=SIGNED_IN + "\nfrom flask import Flask, g\napp = Flask(__name__)",
        replace=TENANT,
        check="""
http = app.test_client()
bearer = {"Authorization": f"Bearer {token}"}
assert http.get("/products", headers=bearer).json == {"user": "user-alice"}
assert http.get("/products").status_code == 401
refused = http.delete("/products/1", headers=bearer)  # alice's token has no roles claim
assert refused.status_code == 403 and "product-admin" in refused.headers["WWW-Authenticate"]
""",
    ),
    "Protect your API (3)": Setup(
        preamble=SIGNED_IN
        + """
from logto_rs import AccessTokenVerifier
verifier = AccessTokenVerifier(provider.endpoint, "https://api.example.com")
authorization = f"Bearer {token}"
""",
        check="""
assert status == 403 and body["error"] == "insufficient_scope", (status, body)
assert "product-admin" in headers["WWW-Authenticate"]
""",
    ),
    "Protect your API (4)": Setup(
        preamble=SIGNED_IN + "\nopaque_token = await client.getAccessToken()",
        replace={**TENANT, **APP, **SECRET},
        check="""
assert claims.sub == "user-alice" and claims.aud == [] and claims.act is None
assert verifier.allowImpersonation is False
""",
    ),
    "Service to service": Setup(
        preamble=SIGNED_IN
        + """
staff = LogtoClient(config)
staff_url = await staff.signIn(REDIRECT_URI)
await staff.handleSignInCallback(complete_sign_in(staff_url, REDIRECT_URI, username="bob"))
staff_token = await staff.getAccessToken()
""",
        replace={
            **TENANT,
            **APP,
            **SECRET,
            '"your-m2m-app-id"': '"m2m-app"',
            '"your-m2m-app-secret"': '"m2m-app-secret"',
            '"user-id"': '"user-alice"',
        },
        check="""
from provider_harness import decode_jwt
assert downstream.scopes == ["read:reports"] and decode_jwt(downstream.accessToken)[1]["sub"] == "user-alice"
impersonated = decode_jwt(as_user.accessToken)[1]
assert impersonated["sub"] == "user-alice" and impersonated["act"] == {"sub": "user-bob"}
assert await service.exchangeAccessToken(token, "https://reports.example.com", ["read:reports"]) == downstream
""",
    ),
    "Deploying": Setup(
        preamble=WEB_APP_CONFIG + "\nimport redis\nfrom flask import Flask\napp = Flask(__name__)\n"
        "from logto_rs.flask import LogtoFlask, RedisSessionStorage",
        replace={"redis.Redis()": "redis.Redis.from_url(redis_url)"},
        check="""
assert logto.redirect_uri == "https://app.example.com/callback"
assert isinstance(app.wsgi_app, ProxyFix)
""",
    ),
    "Back-channel logout": Setup(
        preamble=WEB_APP_CONFIG + "\nfrom flask import Flask\napp = Flask(__name__)\napp.secret_key = 'k'",
        replace={"redis.Redis()": "redis.Redis.from_url(redis_url)", **APP},
        check="""
refused = app.test_client().post("/backchannel-logout", data={"logout_token": "not-a-token"})
assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
assert isinstance(logto.backchannel.sessions, RedisRevocations)
""",
    ),
    "Back-channel logout (2)": Setup(
        preamble=WEB_APP_CONFIG
        + "\nfrom fastapi import FastAPI\nfrom starlette.middleware.sessions import SessionMiddleware"
        + "\napp = FastAPI()\napp.add_middleware(SessionMiddleware, secret_key='k')",
        replace={'"redis://localhost:6379"': "redis_url", **APP},
        check="""
import httpx
from fastapi import Depends
from fastapi_server import serve, sign_in
from logto_rs import IdTokenClaims
from test_backchannel_logout import logout_token

@app.get("/me")
async def me(user: IdTokenClaims = Depends(logto.claims())) -> dict:
    return {"sub": user.sub}

assert isinstance(logto.backchannel.sessions, RedisRevocations)
with serve(app) as url:
    alice = sign_in(url)
    assert alice.get("/me").json() == {"sub": "user-alice"}
    refused = httpx.post(url + "/backchannel-logout", data={"logout_token": "not-a-token"})
    assert refused.status_code == 400 and refused.headers["Cache-Control"] == "no-store"
    token = logout_token(provider, sub="user-alice")
    ended = httpx.post(url + "/backchannel-logout", data={"logout_token": token})
    assert ended.status_code == 200, ended.text
    assert alice.get("/me").status_code == 401
""",
    ),
    "Redis Cluster": Setup(
        preamble=WEB_APP_CONFIG + "\nfrom flask import Flask\napp = Flask(__name__)\napp.secret_key = 'k'",
        replace={'"redis://10.0.0.1:6379"': "cluster_url"},
        check="""
from logto_rs.redis_storage import session_key
with app.test_request_context("/"):
    logto.storage.set("idToken", "a token")
    name = session_key("logto:", logto.storage.ids.get(), "idToken")
assert sessions.get(name) == b"a token"
""",
    ),
    "Redis Cluster (2)": Setup(
        preamble=WEB_APP_CONFIG,
        replace={'"redis://10.0.0.1:6379"': "cluster_url"},
        check="""
import redis.asyncio.cluster
client = storage.client()
assert isinstance(client, redis.asyncio.cluster.RedisCluster)
await client.set("probe", "1")
assert await client.get("probe") == b"1"
await storage.aclose()
""",
    ),
    "Django on a Redis Cluster": Setup(
        check="""
from django.utils.module_loading import import_string
from logto_rs.django.redis_cluster import RedisClusterCache
assert import_string(CACHES["default"]["BACKEND"]) is RedisClusterCache
""",
    ),
    "Sentinel": Setup(
        preamble=WEB_APP_CONFIG + "\nfrom flask import Flask\napp = Flask(__name__)\napp.secret_key = 'k'",
        replace={
            '[("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26379)]': "sentinel_hosts",
            '"mymaster"': '"logto"',
        },
        check="""
assert sessions.set("probe", "1") and sessions.get("probe") == b"1"
assert sentinel.discover_master("logto")
""",
    ),
    "Encrypted sessions in Flask": Setup(
        preamble=WEB_APP_CONFIG + SESSION_KEY,
        check="""
response = app.test_client().get("/sign-in")
assert response.status_code == 302, response
set_cookie = response.headers["Set-Cookie"]
assert set_cookie.startswith("session=v1.") and "Secure" in set_cookie, set_cookie
""",
    ),
    "Encrypted sessions in FastAPI and Starlette": Setup(
        preamble=WEB_APP_CONFIG + SESSION_KEY,
        check="""
import httpx
transport = httpx.ASGITransport(app=app)
async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as browser:
    response = await browser.get("/sign-in")
assert response.status_code == 302, response
set_cookie = response.headers["set-cookie"]
assert set_cookie.startswith("session=v1.") and "secure" in set_cookie, set_cookie
""",
    ),
    "Encrypted sessions in Django": Setup(
        preamble=DJANGO + SESSION_KEY,
        check="""
from django.test import override_settings
from logto_rs.sessions.django import SessionStore
with override_settings(SESSION_ENGINE=SESSION_ENGINE, LOGTO_SESSION_KEYS=LOGTO_SESSION_KEYS):
    store = SessionStore()
    store["logto_idToken"] = "an.id.token"
    store.save()
    assert store.session_key.startswith("v1.") and "an.id.token" not in store.session_key
    assert SessionStore(store.session_key).load() == {"logto_idToken": "an.id.token"}
""",
    ),
    "Webhooks in Flask": Setup(
        replace={'"your-signing-key"': '"whk-docs-key"'},
        check="""
import json
from test_webhooks import encode, payload
from logto_rs.webhooks import sign
body = encode(payload("User.Created"))
signed = {"logto-signature-sha-256": sign("whk-docs-key", body)}
answer = app.test_client().post("/webhooks/logto", data=body, headers=signed)
assert answer.status_code == 200 and answer.get_json() == {}
assert app.test_client().post("/webhooks/logto", data=body).status_code == 401
""",
    ),
    "Django: users in step": Setup(
        preamble=DJANGO,
        replace={**TENANT, **APP, **SECRET, '"your-signing-key"': '"whk-docs-key"'},
        check="""
from django.test import override_settings
from logto_rs.django.conf import get_settings
from logto_rs.webhooks.django import webhooks
with override_settings(LOGTO=LOGTO):
    assert get_settings()["WEBHOOK_SYNC_USERS"] and len(webhooks().handlers("User.Deleted")) == 1
    assert urlpatterns[0].callback.__name__ == "logto_webhook"
""",
    ),
    "Porting from the official SDK": Setup(
        preamble=SIGNED_IN,
        check="""
assert metadata.issuer == provider.issuer
assert claims.sub == "user-alice"
""",
    ),
    "Configuration": Setup(
        replace={**TENANT, **APP},
        check="""
assert config == LogtoConfig(endpoint=provider.endpoint, appId="web-app")  # the defaults shown
try:
    LogtoConfig(provider.endpoint, "web-app")
except TypeError:
    pass
else:
    raise AssertionError("LogtoConfig takes keyword arguments only")
""",
    ),
}


@dataclass
class Snippet:
    name: str
    path: Path  # the document
    line: int  # the document's line of the snippet's first line of code
    code: str


def document_snippets(path: Path) -> list[Snippet]:
    snippets: list[Snippet] = []
    section, count, fence, start = "", 0, "", 0
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, text in enumerate(lines):
        if fence:
            if text.strip() == "```":
                if fence == "```python":
                    count += 1
                    name = section if count == 1 else f"{section} ({count})"
                    snippets.append(Snippet(name, path, start + 1, "\n".join(lines[start:index]) + "\n"))
                fence = ""
        elif text.startswith("```"):
            fence, start = text.strip(), index + 1
        elif re.match(r"#+ ", text):
            section, count = text.lstrip("#").strip(), 0
    return snippets


SNIPPETS = [snippet for path in DOCUMENTS for snippet in document_snippets(path)]


def test_every_declared_section_has_a_snippet() -> None:
    assert sorted(set(SETUPS) - {snippet.name for snippet in SNIPPETS}) == []


def test_the_guides_have_snippets_and_their_names_are_unique() -> None:
    assert {snippet.path.name for snippet in SNIPPETS} >= {"README.md", "flask.md", "protect-your-api.md"}
    documents: dict[str, set[str]] = {}
    for snippet in SNIPPETS:
        documents.setdefault(snippet.name, set()).add(str(snippet.path.relative_to(ROOT)))
    assert {name: paths for name, paths in documents.items() if len(paths) > 1} == {}


def _parse(code: str, first_line: int, path: Path) -> ast.Module:
    tree = ast.parse(code, filename=str(path))
    ast.increment_lineno(tree, first_line - 1)
    return tree


def _program(snippet: Snippet, setup: Setup) -> Iterator[tuple[str, ast.Module]]:
    """The preamble, the snippet (placeholders replaced, interludes inserted) and the check."""
    code = snippet.code
    for placeholder, value in setup.replace.items():
        assert placeholder in code, f"{snippet.name}: the declared placeholder {placeholder} is gone"
        code = code.replace(placeholder, value)
    tree = _parse(code, snippet.line, snippet.path)
    for marker, interlude in setup.after.items():
        lines = [snippet.line + i for i, text in enumerate(code.splitlines()) if marker in text]
        assert len(lines) == 1, f"{snippet.name}: {marker!r} should be on exactly one line"
        position = next(i for i, node in enumerate(tree.body) if node.lineno <= lines[0] <= node.end_lineno)
        tree.body[position + 1 : position + 1] = _parse(interlude, lines[0], snippet.path).body
    yield "preamble", ast.parse(setup.preamble)
    yield "snippet", tree
    yield "check", ast.parse(setup.check)


@pytest.mark.parametrize(
    "snippet", SNIPPETS, ids=[f"{s.path.relative_to(ROOT)}:{s.line}:{s.name}" for s in SNIPPETS]
)
def test_readme_snippet(snippet: Snippet, provider: Provider, request: pytest.FixtureRequest) -> None:
    setup = SETUPS.get(snippet.name)
    where = f"{snippet.path.relative_to(ROOT)}:{snippet.line}"
    assert setup is not None, f"{where}: declare what {snippet.name!r} needs in SETUPS"
    namespace: dict[str, Any] = {
        "__name__": "readme",
        "provider": provider,
        "complete_sign_in": complete_sign_in,
        "REDIRECT_URI": "http://127.0.0.1/callback",
    }
    if "redis_url" in setup.preamble + str(setup.replace):
        namespace["redis_url"] = request.getfixturevalue("redis_url")
    if "cluster_url" in str(setup.replace):
        namespace["cluster_url"] = request.getfixturevalue("cluster").url
    if "sentinel_hosts" in str(setup.replace):
        namespace["sentinel_hosts"] = request.getfixturevalue("sentinel").sentinels
    loop = asyncio.new_event_loop()
    try:
        for part, tree in _program(snippet, setup):
            filename = str(snippet.path) if part == "snippet" else f"<{snippet.name}: {part}>"
            code = compile(tree, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            result = eval(code, namespace)  # the document's own code
            if inspect.iscoroutine(result):
                loop.run_until_complete(result)
    finally:
        loop.close()
