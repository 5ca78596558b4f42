"""Device sign-in (RFC 8628) for command lines and scripts, against the provider's device flow.

The person's side is a real HTTP client on the provider's verification pages
(`complete_device_sign_in`); the script's side is the Python API or `logto-rs` in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from logto_rs import AccessTokenVerifier, LogtoConfig, LogtoOAuthError, MemoryStorage
from logto_rs._cli_device import SETTINGS_KEY
from logto_rs.device import start_device_sign_in, start_device_sign_in_blocking
from logto_rs.errors import LogtoDeviceCodeExpiredError, LogtoDeviceSignInDeniedError
from logto_rs.token_store import FileTokenStore
from provider_harness import Provider, complete_device_sign_in

API = "https://api.example.com"
APP = "cli-app"
DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"


def config(provider: Provider, **overrides: Any) -> LogtoConfig:
    fields: dict[str, Any] = {"endpoint": provider.endpoint, "appId": APP, "resources": [API]}
    fields.update(overrides)
    return LogtoConfig(**fields)


def approve_later(uri: str, **kwargs: Any) -> threading.Thread:
    """The person approves (or denies) on another device while the script waits."""
    thread = threading.Thread(target=complete_device_sign_in, args=(uri,), kwargs=kwargs, daemon=True)
    thread.start()
    return thread


def polls(provider: Provider) -> list[dict[str, Any]]:
    return provider.requests(path="/oidc/token", grant_type=DEVICE_CODE_GRANT_TYPE)


@pytest.fixture(autouse=True)
def sigint_raises_keyboard_interrupt() -> Iterator[None]:
    """Python's own SIGINT handler in this process, and SIGINT's default in every child.

    A test process that a non-interactive shell started in the background (``bash .ci/run &``)
    inherits SIGINT ignored, and Python keeps it ignored: a SIGINT sent to this process or to a
    child it starts would then do nothing. With a handler installed here, this process raises
    ``KeyboardInterrupt``, and a child starts with SIGINT's default disposition (``exec`` resets
    a handled signal to its default, while an ignored one stays ignored).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cli(*args: str, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOGTO_")}
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.Popen(
        [sys.executable, "-m", "logto_rs", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **env},
        **kwargs,
    )


@pytest.fixture
def cli_env(provider: Provider, tmp_path: Path) -> dict[str, str]:
    provider.set_device_flow(interval=1)
    return {
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": APP,
        "LOGTO_CONFIG_DIR": str(tmp_path / "config"),
        "LOGTO_TOKEN_STORE": "file",
    }


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """Stdout and the rest of stderr (read through the same buffers as read_prompt) at exit."""
    assert process.stdout is not None and process.stderr is not None
    process.wait(timeout=timeout)
    return process.stdout.read(), process.stderr.read()


def read_prompt(process: subprocess.Popen[str]) -> str:
    """The verification URI with the code, from `logto-rs login`'s stderr."""
    assert process.stderr is not None
    lines = []
    for _ in range(3):
        lines.append(process.stderr.readline())
        match = re.search(r"\(or open (\S+)\)", lines[-1])
        if match:
            return match.group(1)
    raise AssertionError(f"no prompt in {lines!r}")


def test_login_token_whoami_logout_on_the_command_line(provider: Provider, cli_env: dict[str, str]) -> None:
    login = cli("login", "--resource", API, "--qr", env=cli_env)
    uri = read_prompt(login)
    assert "user_code=" in uri
    complete_device_sign_in(uri, "alice")
    out, err = finish(login)
    assert login.returncode == 0, err
    assert out == "" and "Signed in as alice (user-alice)." in err
    assert "\u2588" in err  # the QR code, drawn with block characters

    token = cli("token", "--resource", API, env=cli_env)
    out, err = token.communicate(timeout=30)
    assert token.returncode == 0, err
    access_token = out.strip()
    assert out == access_token + "\n" and err == ""  # the token alone, for $(logto-rs token)
    claims = AccessTokenVerifier(provider.endpoint, API).blocking.verify(access_token)
    assert claims.sub == "user-alice" and claims.client_id == APP

    whoami = cli("whoami", env=cli_env)
    out, _ = whoami.communicate(timeout=30)
    assert (whoami.returncode, out) == (0, "alice (user-alice)\n")

    store_file = next(Path(cli_env["LOGTO_CONFIG_DIR"]).glob("*.json"))
    refresh_token = json.loads(store_file.read_text())["refreshToken"]
    logout = cli("logout", env=cli_env)
    _, err = logout.communicate(timeout=30)
    assert logout.returncode == 0 and "Signed out." in err
    assert not store_file.exists()
    assert [r["status"] for r in provider.requests(path="/oidc/token/revocation")] == [200]
    refused = httpx.post(
        provider.token_endpoint,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": APP},
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    after = cli("token", "--resource", API, env=cli_env)
    out, err = after.communicate(timeout=30)
    assert (after.returncode, out) == (5, "")
    assert "not signed in: run logto-rs login" in err


def test_the_signed_in_client_has_the_familiar_getters(provider: Provider) -> None:
    provider.set_device_flow(interval=1)
    storage = MemoryStorage()
    scopes = ["urn:logto:scope:organizations", "email"]
    sign_in = start_device_sign_in_blocking(config(provider, scopes=scopes), storage)
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", sign_in.userCode)
    assert sign_in.verificationUri == provider.endpoint + "/device"  # Logto's page
    assert 590 < sign_in.expiresIn <= 600 and sign_in.interval == 1
    assert sign_in.verificationUriComplete and sign_in.userCode in sign_in.verificationUriComplete
    assert "device_code" not in repr(sign_in) and storage._values == {}
    approve_later(sign_in.verificationUriComplete)
    client = sign_in.waitBlocking()
    assert client.getIdTokenClaims().sub == "user-alice"
    assert client.fetchUserInfo().username == "alice"
    first = client.getRefreshToken()
    assert client.getAccessTokenClaims(API).aud == API
    assert client.getRefreshToken() != first  # a native app's refresh token rotates
    assert client.getOrganizationTokenClaims("org-acme").aud == "urn:logto:organization:org-acme"


def test_waiting_again_after_approval_presents_no_device_code(provider: Provider) -> None:
    """A used device code presented again makes Logto revoke the grant: the second wait must not
    poll."""
    provider.set_device_flow(interval=1)
    sign_in = start_device_sign_in_blocking(config(provider))
    approve_later(sign_in.verificationUri + f"?user_code={sign_in.userCode}")
    client = sign_in.waitBlocking()
    before = len(polls(provider))
    assert sign_in.waitBlocking().getIdTokenClaims().sub == "user-alice"
    assert asyncio.run(sign_in.wait()).getIdTokenClaims().sub == "user-alice"
    assert len(polls(provider)) == before
    assert client.getAccessToken(API)


def test_an_app_without_the_device_flow_is_refused(provider: Provider) -> None:
    with pytest.raises(LogtoOAuthError) as refused:
        start_device_sign_in_blocking(config(provider, appId="native-app"))
    assert refused.value.code == "oauth.invalid_request"


def test_denial_and_expiry_end_the_wait_and_store_nothing(provider: Provider) -> None:
    provider.set_device_flow(interval=1)
    storage = MemoryStorage()
    sign_in = start_device_sign_in_blocking(config(provider), storage)
    approve_later(sign_in.verificationUri + f"?user_code={sign_in.userCode}", deny=True)
    with pytest.raises(LogtoDeviceSignInDeniedError) as denied:
        sign_in.waitBlocking()
    assert (denied.value.code, denied.value.status) == ("oauth.access_denied", 400)
    assert storage._values == {}

    provider.set_device_flow(interval=1, ttl=2)
    expiring = start_device_sign_in_blocking(config(provider), storage)
    with pytest.raises(LogtoDeviceCodeExpiredError) as expired:
        expiring.waitBlocking()
    assert expired.value.code == "oauth.expired_token"
    assert storage._values == {}


def test_slow_down_adds_five_seconds_to_the_interval(provider: Provider) -> None:
    provider.set_device_flow(interval=1, slow_down=1)
    storage = MemoryStorage()

    async def scenario() -> None:
        sign_in = await start_device_sign_in(config(provider), storage)
        assert sign_in.verificationUriComplete
        await asyncio.to_thread(complete_device_sign_in, sign_in.verificationUriComplete)
        await sign_in.wait()

    asyncio.run(scenario())
    first, second = polls(provider)  # slow_down, then the tokens: no poll in between
    assert (first["status"], second["status"]) == (400, 200)
    assert second["time_ms"] - first["time_ms"] >= 6000  # interval 1 s + 5 s
    assert "idToken" in storage._values


def test_cancelling_the_wait_stops_polling_and_writes_nothing(provider: Provider, tmp_path: Path) -> None:
    provider.set_device_flow(interval=1)
    store = FileTokenStore(provider.endpoint, APP, tmp_path)

    async def cancelled() -> None:
        sign_in = await start_device_sign_in(config(provider), store)
        task = asyncio.ensure_future(sign_in.wait())
        while not polls(provider):
            await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert sign_in.verificationUriComplete
        await asyncio.to_thread(complete_device_sign_in, sign_in.verificationUriComplete)

    asyncio.run(cancelled())
    count = len(polls(provider))
    time.sleep(1.5)  # a poll that was still scheduled would have come by now
    assert len(polls(provider)) == count
    assert not store.path.exists()

    # Blocking: Ctrl-C (SIGINT) interrupts the wait (here, a 30 s pause between polls).
    provider.set_device_flow(interval=30)
    blocking = start_device_sign_in_blocking(config(provider), store)
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    started = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        blocking.waitBlocking()
    timer.join()
    assert time.monotonic() - started < 20  # not held until the poll due after 30 s
    assert polls(provider)[count:] == []
    assert not store.path.exists() and list(tmp_path.glob("*.tmp")) == []


def test_ctrl_c_ends_logto_rs_login_without_writing(provider: Provider, cli_env: dict[str, str]) -> None:
    login = cli("login", env=cli_env)
    read_prompt(login)
    login.send_signal(signal.SIGINT)
    out, err = finish(login, timeout=20)
    assert (login.returncode, out) == (130, "")
    assert list(Path(cli_env["LOGTO_CONFIG_DIR"]).glob("*.json")) == []


def test_ctrl_c_at_a_terminal_ends_a_login_started_with_sigint_ignored(
    provider: Provider, cli_env: dict[str, str]
) -> None:
    # As `logto-rs login &` from a script: SIGINT ignored from the start, a person at the terminal.
    terminal, person = pty.openpty()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        login = cli("login", env=cli_env, stdin=person)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.close(person)
    try:
        read_prompt(login)
        login.send_signal(signal.SIGINT)
        out, err = finish(login, timeout=20)
    finally:
        login.kill()
        os.close(terminal)
    assert (login.returncode, out) == (130, ""), err
    assert list(Path(cli_env["LOGTO_CONFIG_DIR"]).glob("*.json")) == []


def test_eight_processes_refresh_once(provider: Provider, cli_env: dict[str, str]) -> None:
    store = FileTokenStore(provider.endpoint, APP, cli_env["LOGTO_CONFIG_DIR"])
    sign_in = start_device_sign_in_blocking(config(provider), store)
    approve_later(sign_in.verificationUriComplete or "")
    sign_in.waitBlocking().getAccessToken(API)
    store.set(SETTINGS_KEY, json.dumps({"scopes": [], "resources": [API]}))
    # The access token expires.
    tokens = json.loads(store.get("accessTokenMap") or "{}")
    for cached in tokens.values():
        cached["expiresAt"] = int(time.time()) - 10
    store.set("accessTokenMap", json.dumps(tokens))
    provider.reset()

    processes = [cli("token", "--resource", API, env=cli_env) for _ in range(8)]
    results = [process.communicate(timeout=60) for process in processes]
    assert [p.returncode for p in processes] == [0] * 8, [err for _, err in results]
    refreshes = provider.requests(path="/oidc/token", grant_type="refresh_token")
    assert [r["status"] for r in refreshes] == [200]
    verifier = AccessTokenVerifier(provider.endpoint, API).blocking
    for out, err in results:
        assert err == ""
        assert verifier.verify(out.strip()).sub == "user-alice"


def test_qr_without_segno_is_a_clear_usage_error(
    provider: Provider,
    cli_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from logto_rs.cli import EXIT_USAGE, main

    for name, value in cli_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setitem(sys.modules, "segno", None)  # not installed
    assert main(["login", "--qr"]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "logto-rs: error: --qr needs the segno package: pip install 'logto-rs[qr]'\n"
    assert polls(provider) == [] and provider.requests(path="/oidc/device/auth") == []
