"""The real-Logto suite: fixtures over a running Logto built by tools/logto/logto.sh.

The server, its apps, users, organization and resources come from `provision.json` in
`$LOGTO_HOME` (default: the home of `$LOGTO_VERSION`, itself 1.42.0 by default, as pinned in
tools/logto/versions/). Sign-in goes through Logto's Experience API with the repository's
tools/logto/signin.py, device approval with tools/logto/device_signin.py. `bash .ci/real-logto`
starts the servers and runs this directory against each version; without a server the tests are
skipped, or fail when `LOGTO_REAL_REQUIRED=1` (as in CI).

What a test depends on is what the server's discovery document advertises, never a version
string: `@pytest.mark.advertises(name)` collects a test only where discovery has `name`,
`@pytest.mark.lacks(name)` only where it has not. A test that does not apply to the server is
deselected at collection (never skipped), and its name says which behaviour it is about.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest

from logto_rs import LogtoClient, LogtoConfig, LogtoM2MClient, LogtoM2MConfig, MemoryStorage, Storage

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "tools" / "logto"
LOGTO_VERSION = os.environ.get("LOGTO_VERSION", "1.42.0")


def _pinned_home(version: str) -> Path:
    """The default LOGTO_HOME pinned for `version` (tools/logto/versions/<version>)."""
    pins = (HARNESS / "versions" / version).read_text()
    match = re.search(r"^DEFAULT_HOME=(\S+)", pins, re.MULTILINE)
    assert match, f"no DEFAULT_HOME in the pins of Logto {version}"
    return Path(match.group(1))


LOGTO_HOME = Path(os.environ.get("LOGTO_HOME") or _pinned_home(LOGTO_VERSION))
ORGANIZATIONS_SCOPE = "urn:logto:scope:organizations"
REDIRECT_URI = "http://127.0.0.1:5000/callback"
POST_LOGOUT_URI = "http://127.0.0.1:5000/"
UNKNOWN_RESOURCE = "https://unknown.example.com"
# Logto 1.38 brought the device flow and service-to-service delegation together. Discovery
# advertises the first (RFC 8628's `device_authorization_endpoint`) and nothing names the second,
# so tests of either go by this field.
DEVICE_FLOW = "device_authorization_endpoint"


@dataclass(frozen=True)
class RealLogto:
    """What provision.py made, plus the few paths the tests read."""

    endpoint: str
    issuer: str
    resource: str
    short_resource: str
    short_ttl: int
    management_api: str
    organization_id: str
    users: dict[str, dict[str, str]]
    web: tuple[str, str]
    web_no_exchange: tuple[str, str]
    native: str
    m2m: tuple[str, str]
    core_log: Path
    discovery: dict[str, Any] = field(default_factory=dict)
    # Provisioned only on a Logto that advertises the device flow (1.38+).
    device: Optional[str] = None
    service: Optional[tuple[str, str]] = None

    def user_id(self, name: str) -> str:
        return self.users[name]["id"]

    def password(self, name: str) -> str:
        return self.users[name]["password"]


def _load() -> Optional[RealLogto]:
    path = LOGTO_HOME / "provision.json"
    if not path.exists():
        return None
    p = json.loads(path.read_text())
    try:
        response = httpx.get(p["issuer"] + "/.well-known/openid-configuration", timeout=5)
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    return RealLogto(
        endpoint=p["endpoint"],
        issuer=p["issuer"],
        resource=p["resource"],
        short_resource=p["shortResource"],
        short_ttl=p["shortTtl"],
        management_api=p["managementApi"],
        organization_id=p["organization"]["id"],
        users=p["users"],
        web=(p["web"]["id"], p["web"]["secret"]),
        web_no_exchange=(p["webNoExchange"]["id"], p["webNoExchange"]["secret"]),
        native=p["native"]["id"],
        m2m=(p["m2m"]["id"], p["m2m"]["secret"]),
        core_log=LOGTO_HOME / "core.log",
        discovery=response.json(),
        device=p["device"]["id"] if "device" in p else None,
        service=(p["service"]["id"], p["service"]["secret"]) if "service" in p else None,
    )


_SERVER: list[Optional[RealLogto]] = []


def _server() -> Optional[RealLogto]:
    """The running server, loaded once per session (collection needs its discovery document)."""
    if not _SERVER:
        _SERVER.append(_load())
    return _SERVER[0]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "advertises(name): only where Logto's discovery document has `name`")
    config.addinivalue_line("markers", "lacks(name): only where Logto's discovery document has no `name`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the tests whose `advertises`/`lacks` markers do not fit the running server."""
    gated = [
        item for item in items if item.get_closest_marker("advertises") or item.get_closest_marker("lacks")
    ]
    server = _server() if gated else None
    if server is None:
        return  # the `logto` fixture fails (or skips) each test with the reason

    def applies(item: pytest.Item) -> bool:
        wanted = all(m.args[0] in server.discovery for m in item.iter_markers("advertises"))
        absent = all(m.args[0] not in server.discovery for m in item.iter_markers("lacks"))
        return wanted and absent

    deselected = [item for item in items if not applies(item)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if applies(item)]


@pytest.fixture(scope="session")
def logto() -> RealLogto:
    server = _server()
    if server is None:
        message = (
            f"real Logto is not running ({LOGTO_HOME}/provision.json); start it with `bash .ci/real-logto`"
        )
        if os.environ.get("LOGTO_REAL_REQUIRED") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return server


# --- signing in through Logto's Experience API (tools/logto/signin.py, device_signin.py) --------


def _harness_module(name: str) -> Any:
    if str(HARNESS) not in sys.path:
        sys.path.insert(0, str(HARNESS))
    return __import__(name)


def _signin_module() -> Any:
    return _harness_module("signin")


def approve_device(verification_uri: str, user_code: str, logto: RealLogto, username: str = "alice") -> None:
    """Approve a device sign-in as `username`, as Logto's /device page and sign-in pages do."""
    _harness_module("device_signin").approve_device(
        verification_uri, user_code, username, logto.password(username)
    )


def deny_device(verification_uri: str, user_code: str) -> None:
    """Refuse a device sign-in on Logto's user-code form."""
    _harness_module("device_signin").deny_device(verification_uri, user_code)


def experience_sign_in(sign_in_url: str, logto: RealLogto, username: str = "alice") -> str:
    """Complete an SDK's sign-in URL as a provisioned user; returns the callback URL (not requested)."""
    return experience_sign_in_as(sign_in_url, username, logto.password(username))


def experience_sign_in_as(sign_in_url: str, username: str, password: str) -> str:
    """Complete an SDK's sign-in URL as any user; returns the callback URL (not requested)."""
    callback: str = _signin_module().sign_in(sign_in_url, username, password)
    return callback


# --- clients -------------------------------------------------------------------------------------

APPS = ("web", "native")


def config_for(logto: RealLogto, app: str, **overrides: Any) -> LogtoConfig:
    """A LogtoConfig for the `web` (confidential) or `native` (public) app, with every resource
    and the organizations scope; override any field by keyword."""
    fields: dict[str, Any] = {
        "endpoint": logto.endpoint,
        "appId": logto.web[0] if app == "web" else logto.native,
        "appSecret": logto.web[1] if app == "web" else None,
        "scopes": [ORGANIZATIONS_SCOPE, "email", "read:products", "read:short", "read:members"],
        "resources": [logto.resource, logto.short_resource],
    }
    fields.update(overrides)
    return LogtoConfig(**fields)


ClientFactory = Callable[..., LogtoClient]


@pytest.fixture
def make_client(logto: RealLogto) -> ClientFactory:
    def factory(app: str = "web", storage: Optional[Storage] = None, **overrides: Any) -> LogtoClient:
        return LogtoClient(config_for(logto, app, **overrides), storage=storage or MemoryStorage())

    return factory


@pytest.fixture
def m2m(logto: RealLogto) -> LogtoM2MClient:
    """The provisioned machine-to-machine app (Management API access), with a fresh token cache."""
    return LogtoM2MClient(LogtoM2MConfig(endpoint=logto.endpoint, appId=logto.m2m[0], appSecret=logto.m2m[1]))


async def sign_in(client: LogtoClient, logto: RealLogto, username: str = "alice") -> None:
    url = await client.signIn(REDIRECT_URI)
    await client.handleSignInCallback(experience_sign_in(url, logto, username))


# --- what Logto saw: core.log --------------------------------------------------------------------


class CoreLog:
    """Counts the requests Logto received after a mark, from its core.log, where each request
    has two lines: `<id>   <-- POST /oidc/token` when it arrives and
    `<id>   --> POST /oidc/token 200 3ms 1kb` when it is answered. A request counts only if it
    arrived after the mark: the answer line of an earlier one may be written just after it."""

    _line = re.compile(r"^(\S+)\s+(<--|-->) (\S+) (\S+?)(\?\S*)?(\s|$)")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size

    def _requests(self) -> tuple[dict[str, tuple[str, str]], set[str]]:
        with self.path.open("rb") as f:
            f.seek(self.offset)
            lines = f.read().decode(errors="replace").splitlines()
        arrived: dict[str, tuple[str, str]] = {}
        answered: set[str] = set()
        for line in lines:
            match = self._line.match(line)
            if match is None:
                continue
            request_id, arrow, method, path = match.group(1, 2, 3, 4)
            if arrow == "<--":
                arrived[request_id] = (method, path)
            elif request_id in arrived:
                answered.add(request_id)
        return arrived, answered

    def count(self, method: str, path: str) -> int:
        """Requests for `method path` that arrived since the mark (waits for their answers)."""
        deadline = time.monotonic() + 3
        while True:
            arrived, answered = self._requests()
            if set(arrived) <= answered or time.monotonic() > deadline:
                return sum(1 for m, p in arrived.values() if (m, p) == (method, path))
            time.sleep(0.05)

    def token_requests(self) -> int:
        return self.count("POST", "/oidc/token")


@pytest.fixture
def core_log(logto: RealLogto) -> Callable[[], CoreLog]:
    """core_log() marks the log's current end; .token_requests() counts POST /oidc/token since."""
    return lambda: CoreLog(logto.core_log)


# --- raw protocol helpers ------------------------------------------------------------------------


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a JWS, unverified."""

    def part(s: str) -> dict[str, Any]:
        decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        return decoded

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def refresh_raw(logto: RealLogto, app: str, refresh_token: str, **params: str) -> httpx.Response:
    """A refresh_token grant sent by hand (to see what Logto itself answers)."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **params}
    if app == "web":
        return httpx.post(logto.issuer + "/token", data=form, auth=logto.web, timeout=10)
    return httpx.post(logto.issuer + "/token", data={**form, "client_id": logto.native}, timeout=10)


@pytest.fixture(scope="session")
def m2m_token(logto: RealLogto) -> Iterator[Callable[[], str]]:
    """A Management API token of the provisioned m2m app (cached for the session)."""
    cache: dict[str, str] = {}

    def get() -> str:
        if "token" not in cache:
            r = httpx.post(
                logto.issuer + "/token",
                data={"grant_type": "client_credentials", "resource": logto.management_api, "scope": "all"},
                auth=logto.m2m,
                timeout=10,
            )
            r.raise_for_status()
            cache["token"] = r.json()["access_token"]
        return cache["token"]

    yield get
