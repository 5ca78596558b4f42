"""Run the development OpenID provider (tests/provider/server.mjs) and drive it with plain HTTP.

The provider is a real oidc-provider 8.8.1 configured to behave like Logto (see
tests/provider/README.md). Typical use in a test::

    provider = Provider.start()          # or Provider().start(alg="RS256")
    try:
        callback = complete_sign_in(auth_url, "http://127.0.0.1/callback")
        ...
        provider.fault("token", "status500")
    finally:
        provider.stop()

Only the standard library and httpx are used.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import queue
import secrets
import shutil
import socket
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

PROVIDER_DIR = Path(__file__).resolve().parent / "provider"
SERVER_SCRIPT = PROVIDER_DIR / "server.mjs"
SEED_PATH = PROVIDER_DIR / "seed.json"
READY_TIMEOUT = 20.0
MAX_REDIRECTS = 20


class ProviderError(RuntimeError):
    """The provider process failed to start, or an admin call failed."""


class SignInError(RuntimeError):
    """The headless sign-in (or sign-out) flow did not reach the client's redirect URI."""


# --- small helpers -------------------------------------------------------------------------------


def load_seed() -> dict[str, Any]:
    """The provider's seed data (users, clients and secrets, resources, organizations)."""
    return json.loads(SEED_PATH.read_text(encoding="utf-8"))


def seed_password(username: str) -> str:
    """The seed password of a username or email ("" for an unknown user, whose login fails)."""
    for user in load_seed()["users"]:
        if username in (user["username"], user.get("email")):
            return user["password"]
    return ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pkce_pair() -> tuple[str, str]:
    """A PKCE (code_verifier, S256 code_challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def token_hash(value: str) -> str:
    """How the request log shows a secret or token: "sha256:<16 hex digits>"."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]


def _b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, payload) of a compact JWS, WITHOUT verifying anything."""
    header, payload, _signature = token.split(".")
    return _b64url_json(header), _b64url_json(payload)


def ensure_node_modules() -> None:
    """Install the provider's npm dependencies (npm ci, from the lock file) when missing."""
    if (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise ProviderError("npm is not installed; cannot install tests/provider dependencies")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PROVIDER_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise ProviderError(f"npm ci failed in {PROVIDER_DIR}:\n{result.stdout}\n{result.stderr}")


class _hybridmethod:
    """Lets `start` work on the class (`Provider.start()`) and on an instance (`p.start()`)."""

    def __init__(self, func):
        self.func = func

    def __get__(self, instance, owner):
        target = instance if instance is not None else owner()
        return lambda *args, **kwargs: self.func(target, *args, **kwargs)


# --- the provider process ------------------------------------------------------------------------


class Provider:
    """A running tests/provider/server.mjs on 127.0.0.1, plus one thin method per admin route."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.endpoint = ""  # http://127.0.0.1:PORT
        self.issuer = ""  # endpoint + "/oidc"
        self.alg = ""
        self._stderr: collections.deque[str] = collections.deque(maxlen=5000)
        self._http = httpx.Client(timeout=10.0)

    # lifecycle

    @_hybridmethod
    def start(self, alg: str = "ES384", port: int | None = None) -> Provider:
        """Start the server (free port unless given) and wait for its READY line (20 s)."""
        if self.process is not None:
            raise ProviderError("provider already started")
        ensure_node_modules()
        node = os.environ.get("NODE") or shutil.which("node")
        if node is None:
            raise ProviderError("node is not installed")
        if self._http.is_closed:  # started again after stop()
            self._http = httpx.Client(timeout=10.0)
        attempts = 1 if port is not None else 3
        for attempt in range(attempts):
            chosen = port if port is not None else free_port()
            try:
                self._launch(node, chosen, alg)
                return self
            except ProviderError as error:
                if "EADDRINUSE" not in str(error) or attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, node: str, port: int, alg: str) -> None:
        env = {**os.environ, "PORT": str(port), "ALG": alg}
        self._stderr.clear()
        process = subprocess.Popen(
            [node, str(SERVER_SCRIPT)],
            cwd=PROVIDER_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        lines: queue.Queue[str | None] = queue.Queue()

        def pump_stdout() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        def pump_stderr() -> None:
            assert process.stderr is not None
            for line in process.stderr:
                self._stderr.append(line.rstrip("\n"))

        threading.Thread(target=pump_stdout, daemon=True).start()
        stderr_pump = threading.Thread(target=pump_stderr, daemon=True)
        stderr_pump.start()

        def fail() -> None:
            self._kill(process)
            stderr_pump.join(timeout=2)  # so the message has everything it printed

        try:
            line = lines.get(timeout=READY_TIMEOUT)
        except queue.Empty:
            fail()
            raise ProviderError(
                f"provider did not print READY within {READY_TIMEOUT:.0f}s; stderr:\n{self.stderr()}"
            ) from None
        if line is None or not line.startswith("READY "):
            fail()
            raise ProviderError(f"provider failed to start (stdout {line!r}); stderr:\n{self.stderr()}")
        self.process = process
        self.endpoint = line.split(" ", 1)[1].strip()
        self.issuer = self.endpoint + "/oidc"
        self.alg = alg

    @staticmethod
    def _kill(process: subprocess.Popen[str]) -> None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def stop(self) -> None:
        """SIGTERM the server and wait for it (SIGKILL after 5 s)."""
        if self.process is not None:
            self._kill(self.process)
            self.process = None
        self._http.close()

    def __enter__(self) -> Provider:
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stderr(self) -> str:
        """What the server printed on stderr so far (for failure messages)."""
        return "\n".join(self._stderr)

    # well-known URLs

    @property
    def discovery_url(self) -> str:
        return self.issuer + "/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return self.issuer + "/auth"

    @property
    def token_endpoint(self) -> str:
        return self.issuer + "/token"

    @property
    def userinfo_endpoint(self) -> str:
        return self.issuer + "/me"

    @property
    def jwks_uri(self) -> str:
        return self.issuer + "/jwks"

    @property
    def end_session_endpoint(self) -> str:
        return self.issuer + "/session/end"

    @property
    def revocation_endpoint(self) -> str:
        return self.issuer + "/token/revocation"

    def authorization_url(
        self,
        client_id: str,
        redirect_uri: str,
        code_challenge: str,
        *,
        scope: str = "openid offline_access profile",
        resources: Iterable[str] = (),
        state: str | None = None,
        nonce: str | None = None,
        prompt: str = "consent",
        **extra: str,
    ) -> str:
        """An authorization URL like the Logto SDKs build (code + PKCE S256, prompt=consent)."""
        params: list[tuple[str, str]] = [
            ("client_id", client_id),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state or secrets.token_urlsafe(16)),
            ("code_challenge", code_challenge),
            ("code_challenge_method", "S256"),
            ("prompt", prompt),
        ]
        params += [("resource", resource) for resource in resources]
        if nonce is not None:
            params.append(("nonce", nonce))
        params += list(extra.items())
        return self.authorization_endpoint + "?" + urlencode(params)

    # admin routes (one thin method each)

    def _admin(
        self, method: str, path: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> Any:
        response = self._http.request(method, self.endpoint + "/__admin" + path, json=body, params=params)
        if response.status_code >= 400:
            raise ProviderError(f"{method} /__admin{path} -> {response.status_code}: {response.text}")
        return response.json()

    def fault(
        self, endpoint: str, mode: str, times: int = 1, delay_ms: int | None = None, status: int | None = None
    ) -> dict[str, Any]:
        """POST /__admin/fault: the next `times` requests to `endpoint` misbehave.

        endpoint: token | discovery | jwks | userinfo | revocation | introspection | end_session | auth
        mode: status500 | html | hang (with delay_ms: answer late) | invalid_json
        """
        body: dict[str, Any] = {"endpoint": endpoint, "mode": mode, "times": times}
        if delay_ms is not None:
            body["delay_ms"] = delay_ms
        if status is not None:
            body["status"] = status
        return self._admin("POST", "/fault", body)["armed"]

    def faults(self) -> dict[str, Any]:
        """GET /__admin/faults: the faults still armed."""
        return self._admin("GET", "/faults")["faults"]

    def mutate_next_id_token(
        self,
        claims: dict[str, Any] | None = None,
        remove_claims: Iterable[str] = (),
        sign: str = "provider",
        header: dict[str, Any] | None = None,
        secret_form: str = "pem",
    ) -> dict[str, Any]:
        """POST /__admin/id-token: tamper with the next ID token the token endpoint returns.

        sign: provider | attacker | none | hs256_public | provider_no_kid
        secret_form (hs256_public): "pem" or "jwk" form of the provider's public key as HMAC key
        """
        return self._admin(
            "POST",
            "/id-token",
            {
                "claims": claims or {},
                "remove_claims": list(remove_claims),
                "sign": sign,
                "header": header or {},
                "secret_form": secret_form,
            },
        )["armed"]

    def set_jwks_mode(self, mode: str) -> str:
        """POST /__admin/jwks-mode: normal | strip_kid | empty."""
        return self._admin("POST", "/jwks-mode", {"mode": mode})["mode"]

    def rotate_keys(self, alg: str | None = None) -> dict[str, Any]:
        """POST /__admin/rotate-keys: new signing key (same alg unless given); old keys stay
        published. Returns {alg, kid, kids, jwks}."""
        info = self._admin("POST", "/rotate-keys", {"alg": alg} if alg else {})
        self.alg = info["alg"]
        return info

    def set_alg(self, alg: str) -> dict[str, Any]:
        """Switch the signing alg (ES384, RS256, ES256, ES512, PS256) by rotating to a new key."""
        return self.rotate_keys(alg)

    def publish_jwks(self, kids: Iterable[str] | None = None, cache_control: str | None = None) -> None:
        """POST /__admin/jwks-publish: list only `kids` in the JWKS and/or answer it with this
        Cache-Control (None, None: as usual)."""
        self._admin(
            "POST",
            "/jwks-publish",
            {"kids": list(kids) if kids is not None else None, "cache_control": cache_control},
        )

    def huge_body(self, path: str, size: int) -> None:
        """POST /__admin/huge-body: the next GET of `path` streams `size` bytes of chunked JSON."""
        self._admin("POST", "/huge-body", {"path": path, "bytes": size})

    def huge_body_report(self) -> dict[str, Any]:
        """GET /__admin/huge-body: {sent, closed} of the last huge body."""
        return self._admin("GET", "/huge-body")

    def keys(self) -> dict[str, Any]:
        """GET /__admin/keys: {alg, kid (current), kids (all published), jwks (public)}."""
        return self._admin("GET", "/keys")

    def requests(
        self, path: str | None = None, method: str | None = None, grant_type: str | None = None
    ) -> list[dict[str, Any]]:
        """GET /__admin/requests: the request log, oldest first, secrets as token_hash()."""
        params = {k: v for k, v in {"path": path, "method": method, "grant_type": grant_type}.items() if v}
        return self._admin("GET", "/requests", params=params)["requests"]

    def reset(self) -> None:
        """POST /__admin/reset: clear faults, the ID token mutation, the log, the JWKS mode, the
        refresh-token overrides and the back-channel logout settings."""
        self._admin("POST", "/reset", {})

    def add_redirect_uris(
        self, client_id: str, redirect_uris: Iterable[str] = (), post_logout_redirect_uris: Iterable[str] = ()
    ) -> dict[str, Any]:
        """POST /__admin/clients/:id/redirect-uris: register extra (post-logout) redirect URIs."""
        return self._admin(
            "POST",
            f"/clients/{client_id}/redirect-uris",
            {
                "redirect_uris": list(redirect_uris),
                "post_logout_redirect_uris": list(post_logout_redirect_uris),
            },
        )

    def set_refresh_tokens(
        self, client_id: str, rotation: str | None = None, ttl: int | None = None
    ) -> dict[str, Any]:
        """POST /__admin/clients/:id/refresh-tokens: override a client's refresh-token policy until
        the next reset. rotation: "logto" (the default: public clients at every refresh, others
        past 70 % of the lifetime) | "always" | "never"; ttl: lifetime in seconds of the refresh
        tokens issued from now on."""
        body: dict[str, Any] = {}
        if rotation is not None:
            body["rotation"] = rotation
        if ttl is not None:
            body["ttl"] = ttl
        return self._admin("POST", f"/clients/{client_id}/refresh-tokens", body)

    def set_backchannel_logout(self, client_id: str, uri: str | None, session_required: bool = True) -> None:
        """POST /__admin/clients/:id/backchannel-logout: the client's back-channel logout URI and
        "is session required" (ID tokens then carry ``sid``), until the next reset; None: none."""
        body = {"uri": uri, "session_required": session_required}
        self._admin("POST", f"/clients/{client_id}/backchannel-logout", body)

    def sign_jwt(
        self, claims: dict[str, Any], header: dict[str, Any] | None = None, sign: str = "provider"
    ) -> str:
        """POST /__admin/sign-jwt: a JWT with these claims, signed with the provider's current key
        (``sign="attacker"``: a fresh key under the provider's kid)."""
        body = {"claims": claims, "header": header or {}, "sign": sign}
        return str(self._admin("POST", "/sign-jwt", body)["token"])

    def set_refresh_token_reuse(self, seconds: float) -> float:
        """POST /__admin/refresh-token-reuse: how long a rotated refresh token is still accepted
        (Logto's leeway, 3 s by default, until the next reset); 0 = reuse is detected at once."""
        return float(self._admin("POST", "/refresh-token-reuse", {"seconds": seconds})["seconds"])

    def set_device_flow(
        self,
        interval: float | None = None,
        min_poll_interval: float | None = None,
        slow_down: int | None = None,
        ttl: float | None = None,
    ) -> dict[str, Any]:
        """POST /__admin/device-flow, until the next reset: the `interval` (s) device authorizations
        advertise (Logto: 5), how close two polls of one code may come before `slow_down`
        (`min_poll_interval`, s; default the interval), the number of next polls that answer
        `slow_down` whatever their timing, and the lifetime (`ttl`, s) of new device codes."""
        body = {
            "interval": interval,
            "min_poll_interval": min_poll_interval,
            "slow_down": slow_down,
            "ttl": ttl,
        }
        return self._admin("POST", "/device-flow", {k: v for k, v in body.items() if v is not None})

    def seed(self) -> dict[str, Any]:
        """GET /__admin/seed: the seed data the server loaded."""
        return self._admin("GET", "/seed")

    # convenience: a whole sign-in

    def sign_in(
        self,
        client_id: str = "web-app",
        redirect_uri: str = "http://127.0.0.1/callback",
        *,
        scope: str = "openid offline_access profile",
        resources: Iterable[str] = (),
        username: str = "alice",
        password: str | None = None,
        nonce: str | None = None,
    ) -> dict[str, Any]:
        """Authorization code + PKCE sign-in; returns the token endpoint's JSON response."""
        client = next(c for c in load_seed()["clients"] if c["client_id"] == client_id)
        verifier, challenge = pkce_pair()
        url = self.authorization_url(
            client_id, redirect_uri, challenge, scope=scope, resources=resources, nonce=nonce
        )
        callback = complete_sign_in(url, redirect_uri, username=username, password=password)
        query = dict(httpx.URL(callback).params)
        if "code" not in query:
            raise SignInError(f"sign-in failed: {callback}")
        form = {
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
        }
        auth = (client_id, client["client_secret"]) if client.get("client_secret") else None
        response = self._http.post(self.token_endpoint, data=form, auth=auth)
        if response.status_code != 200:
            raise SignInError(f"code exchange failed: {response.status_code} {response.text}")
        return response.json()


# --- headless browser-less flows -----------------------------------------------------------------


class _FormParser(HTMLParser):
    """Collects the forms of a page: [{action, method, inputs: {name: value}}]."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action", ""),
                    "method": attributes.get("method", "get").lower(),
                    "inputs": {},
                }
            )
        elif tag == "input" and self.forms and attributes.get("name"):
            self.forms[-1]["inputs"][attributes["name"]] = attributes.get("value", "")


def _forms(html: str) -> list[dict[str, Any]]:
    parser = _FormParser()
    parser.feed(html)
    return parser.forms


def _location(response: httpx.Response) -> str:
    return urljoin(str(response.url), response.headers["location"])


def _is_interaction(url: str) -> bool:
    return urlsplit(url).path.startswith("/interaction/")


def _fail(response: httpx.Response, what: str) -> SignInError:
    return SignInError(
        f"{what}: {response.request.method} {response.url} -> {response.status_code}: {response.text[:1000]}"
    )


def _new_browser() -> httpx.Client:
    return httpx.Client(follow_redirects=False, timeout=10.0)


def _submit_login(
    browser: httpx.Client, url: str, page: httpx.Response, username: str, password: str
) -> httpx.Response:
    """Fill in and post the provider's login page (`page`, at `url`); its answer."""
    login_form = next(
        (
            f
            for f in _forms(page.text)
            if "password" in f["inputs"] or "username" in f["inputs"] or f["action"].endswith("/login")
        ),
        None,
    )
    if login_form is None:
        raise _fail(page, "no login form on the interaction page")
    response = browser.post(
        urljoin(url, login_form["action"]), data={"username": username, "password": password}
    )
    if response.status_code == 401:
        raise _fail(response, f"sign-in as {username!r} was refused")
    return response


def complete_sign_in(
    auth_url: str,
    redirect_uri: str,
    username: str = "alice",
    password: str | None = None,
    client: httpx.Client | None = None,
) -> str:
    """Follow the authorization flow like a browser would (cookie jar, each Location by hand),
    sign in on the provider's login page and let it consent automatically.

    Returns the final callback URL (the Location starting with `redirect_uri`, carrying `code`
    or `error`) without requesting it. Pass `client` (an httpx.Client with
    follow_redirects=False) to reuse a browser session, e.g. for a second sign-in.
    """
    if password is None:
        password = seed_password(username)
    browser = client or _new_browser()
    try:
        url = auth_url
        for _ in range(MAX_REDIRECTS):
            response = browser.get(url)
            if response.status_code == 200 and _is_interaction(url):
                response = _submit_login(browser, url, response, username, password)
            if not response.is_redirect:
                raise _fail(response, "sign-in flow stopped before reaching the redirect URI")
            url = _location(response)
            if url.startswith(redirect_uri):
                return url
        raise SignInError(f"more than {MAX_REDIRECTS} redirects; last URL {url}")
    finally:
        if client is None:
            browser.close()


def deny_sign_in(auth_url: str, redirect_uri: str, client: httpx.Client | None = None) -> str:
    """Follow the authorization flow and cancel at the first interaction (POST .../abort).

    Returns the callback URL carrying `error=access_denied`, without requesting it.
    """
    browser = client or _new_browser()
    try:
        url = auth_url
        aborted = False
        for _ in range(MAX_REDIRECTS):
            if _is_interaction(url) and not aborted:
                response = browser.post(url.split("?")[0].rstrip("/") + "/abort")
                aborted = True
            else:
                response = browser.get(url)
            if not response.is_redirect:
                raise _fail(response, "deny flow stopped before reaching the redirect URI")
            url = _location(response)
            if url.startswith(redirect_uri):
                return url
        raise SignInError(f"more than {MAX_REDIRECTS} redirects; last URL {url}")
    finally:
        if client is None:
            browser.close()


def complete_sign_out(end_session_url: str, client: httpx.Client | None = None) -> str:
    """Open the end-session URL and confirm the logout form the provider renders.

    Returns the Location the provider finally redirects to (the post_logout_redirect_uri, with
    `state` if one was sent) without requesting it, or the URL of the provider's "Signed out"
    page when there is no post_logout_redirect_uri. Pass the `client` used for sign-in to end
    that browser session.
    """
    browser = client or _new_browser()
    try:
        response = browser.get(end_session_url)
        if response.status_code != 200:
            raise _fail(response, "end-session request failed")
        form = next((f for f in _forms(response.text) if "xsrf" in f["inputs"]), None)
        if form is None:
            raise _fail(response, "no logout confirmation form")
        data = {**form["inputs"], "logout": "yes"}
        response = browser.post(urljoin(str(response.url), form["action"]), data=data)
        url = str(response.url)
        for _ in range(MAX_REDIRECTS):
            if not response.is_redirect:
                if response.status_code != 200:
                    raise _fail(response, "logout confirmation failed")
                return url
            url = _location(response)
            if not urlsplit(url).path.startswith("/oidc/"):
                return url
            response = browser.get(url)
        raise SignInError(f"more than {MAX_REDIRECTS} redirects; last URL {url}")
    finally:
        if client is None:
            browser.close()


def complete_device_sign_in(
    verification_uri_complete: str,
    username: str = "alice",
    password: str | None = None,
    *,
    deny: bool = False,
    client: httpx.Client | None = None,
) -> str:
    """Complete (or with ``deny``, abort) a device sign-in like a browser on another device.

    Opens the verification URI with the user code, submits the code form, confirms the device
    (or presses "Abort"), signs in on the provider's login page and lets it consent. Returns the
    final page's text (oidc-provider's "Sign-in Success" page, or the aborted one).
    """
    if password is None:
        password = seed_password(username)
    browser = client or _new_browser()
    aborted = False
    try:
        response = browser.get(verification_uri_complete)
        for _ in range(MAX_REDIRECTS):
            if response.is_redirect:
                url = _location(response)
                response = browser.get(url)
                continue
            if response.status_code != 200:
                raise _fail(response, "device sign-in failed")
            url = str(response.url)
            if _is_interaction(url):
                response = _submit_login(browser, url, response, username, password)
                continue
            form = next((f for f in _forms(response.text) if "xsrf" in f["inputs"]), None)
            if form is None or aborted:  # the success page, or the one after the abort
                return response.text
            data = dict(form["inputs"])
            if 'id="op.deviceConfirmForm"' in response.text:
                data.update({"abort": "yes"} if deny else {"confirm": "yes"})
                aborted = deny
            response = browser.post(urljoin(url, form["action"]), data=data)
        raise SignInError(f"more than {MAX_REDIRECTS} steps in the device sign-in")
    finally:
        if client is None:
            browser.close()
