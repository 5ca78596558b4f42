"""Device sign-in (RFC 8628) against the real Logto.

Where discovery advertises the device flow (Logto 1.38+), a person approves or denies on Logto's
own device page (tools/logto/device_signin.py makes its calls) while the script waits, through
the Python API and through `logto-rs login`/`token`/`whoami`/`logout`. Where it does not, the SDK
names the missing feature before any request beyond discovery, and the command line exits with a
usage error rather than a traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import DEVICE_FLOW, ORGANIZATIONS_SCOPE, RealLogto, approve_device, config_for, deny_device
from logto_rs import AccessTokenVerifier, LogtoConfig, LogtoConfigError, LogtoOAuthError, MemoryStorage
from logto_rs.device import start_device_sign_in_blocking
from logto_rs.errors import LogtoDeviceSignInDeniedError

advertised = pytest.mark.advertises(DEVICE_FLOW)


def device_config(logto: RealLogto, **overrides: Any) -> LogtoConfig:
    assert logto.device is not None, "provision.py makes the `device` app where the device flow exists"
    fields: dict[str, Any] = {
        "endpoint": logto.endpoint,
        "appId": logto.device,
        "scopes": [ORGANIZATIONS_SCOPE, "email"],
        "resources": [logto.resource],
    }
    fields.update(overrides)
    return LogtoConfig(**fields)


def in_background(target: Any, *args: Any) -> threading.Thread:
    """The person, on another device, while the script waits."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target(*args)
        except BaseException as e:  # surfaced by join_checked
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.errors = errors  # type: ignore[attr-defined]
    thread.start()
    return thread


def join_checked(thread: threading.Thread) -> None:
    thread.join(timeout=60)
    assert not thread.is_alive() and not thread.errors, thread.errors  # type: ignore[attr-defined]


@advertised
def test_device_sign_in_approved_through_the_python_api(logto: RealLogto) -> None:
    storage = MemoryStorage()
    sign_in = start_device_sign_in_blocking(device_config(logto), storage)
    assert re.fullmatch(r"[A-Z]{4}-[A-Z]{4}", sign_in.userCode)
    assert sign_in.verificationUri == logto.endpoint + "/device"  # Logto's page, not the provider's
    assert sign_in.interval == 5  # Logto sends no interval: RFC 8628's default
    assert "device_code" not in repr(sign_in) and storage._values == {}
    person = in_background(approve_device, sign_in.verificationUri, sign_in.userCode, logto)
    client = sign_in.waitBlocking()
    join_checked(person)
    assert client.getIdTokenClaims().sub == logto.user_id("alice")
    assert client.getIdTokenClaims().aud == logto.device
    assert client.fetchUserInfo().username == "alice"
    first = client.getRefreshToken()
    claims = AccessTokenVerifier(logto.endpoint, logto.resource).blocking.verify(
        client.getAccessToken(logto.resource) or ""
    )
    assert claims.sub == logto.user_id("alice") and claims.client_id == logto.device
    assert client.getRefreshToken() != first  # a native app's refresh token rotates
    assert client.getOrganizationTokenClaims(logto.organization_id).aud == (
        f"urn:logto:organization:{logto.organization_id}"
    )


@advertised
def test_a_second_device_poll_after_approval_sends_no_request_and_keeps_the_session(
    logto: RealLogto, core_log: Any
) -> None:
    """Logto revokes the whole grant when a used device code comes back: waiting again must not
    present it."""
    sign_in = start_device_sign_in_blocking(device_config(logto))
    person = in_background(approve_device, sign_in.verificationUri, sign_in.userCode, logto)
    client = sign_in.waitBlocking()
    join_checked(person)
    log = core_log()
    again = sign_in.waitBlocking()
    assert log.token_requests() == 0
    assert again.getIdTokenClaims().sub == logto.user_id("alice")
    assert client.getAccessToken(logto.resource)  # the grant lives: a refresh succeeds


@advertised
def test_device_sign_in_denied_stores_nothing(logto: RealLogto) -> None:
    storage = MemoryStorage()
    sign_in = start_device_sign_in_blocking(device_config(logto), storage)
    person = in_background(deny_device, sign_in.verificationUri, sign_in.userCode)
    with pytest.raises(LogtoDeviceSignInDeniedError) as denied:
        sign_in.waitBlocking()
    join_checked(person)
    assert denied.value.code == "oauth.access_denied"
    assert storage._values == {}


@advertised
def test_an_app_without_the_device_flow_is_refused_by_logto(logto: RealLogto) -> None:
    with pytest.raises(LogtoOAuthError) as refused:
        start_device_sign_in_blocking(device_config(logto, appId=logto.native))
    assert refused.value.code == "oauth.invalid_request"


def cli_env(logto: RealLogto, app_id: str, config_dir: Path) -> dict[str, str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOGTO_")}
    return {
        **clean,
        "LOGTO_ENDPOINT": logto.endpoint,
        "LOGTO_APP_ID": app_id,
        "LOGTO_CONFIG_DIR": str(config_dir),
        "LOGTO_TOKEN_STORE": "file",
    }


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "logto_rs", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )


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


def approve_on_the_page(uri: str, logto: RealLogto) -> None:
    """The person types the code shown in the prompt's `verification_uri_complete`."""
    url = httpx.URL(uri)
    approve_device(str(url.copy_with(query=None)), url.params["user_code"], logto)


@advertised
def test_login_token_whoami_logout_on_the_command_line(logto: RealLogto, tmp_path: Path) -> None:
    assert logto.device is not None
    env = cli_env(logto, logto.device, tmp_path)
    login = cli(env, "login", "--resource", logto.resource)
    uri = read_prompt(login)
    approve_on_the_page(uri, logto)
    _, err = login.communicate(timeout=60)
    assert login.returncode == 0, err
    assert f"Signed in as alice ({logto.user_id('alice')})." in err

    token = cli(env, "token", "--resource", logto.resource)
    out, err = token.communicate(timeout=30)
    assert token.returncode == 0, err
    claims = AccessTokenVerifier(logto.endpoint, logto.resource).blocking.verify(out.strip())
    assert claims.sub == logto.user_id("alice") and claims.client_id == logto.device

    whoami = cli(env, "whoami")
    out, _ = whoami.communicate(timeout=30)
    assert (whoami.returncode, out) == (0, f"alice ({logto.user_id('alice')})\n")

    store_file = next(tmp_path.glob("*.json"))
    refresh_token = json.loads(store_file.read_text())["refreshToken"]
    logout = cli(env, "logout")
    _, err = logout.communicate(timeout=30)
    assert logout.returncode == 0 and "Signed out." in err
    assert not store_file.exists()
    refused = httpx.post(
        logto.issuer + "/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": logto.device},
        timeout=10,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    after = cli(env, "token", "--resource", logto.resource)
    out, err = after.communicate(timeout=30)
    assert (after.returncode, out) == (5, "")


@advertised
def test_login_denied_on_the_command_line_writes_nothing(logto: RealLogto, tmp_path: Path) -> None:
    assert logto.device is not None
    login = cli(cli_env(logto, logto.device, tmp_path), "login")
    uri = read_prompt(login)
    url = httpx.URL(uri)
    deny_device(str(url.copy_with(query=None)), url.params["user_code"])
    out, err = login.communicate(timeout=60)
    assert login.returncode != 0 and out == ""
    assert "denied" in err.lower() and "Traceback" not in err
    assert list(tmp_path.glob("*.json")) == []


@pytest.mark.lacks(DEVICE_FLOW)
def test_a_logto_without_the_device_flow_is_named_clearly(logto: RealLogto, tmp_path: Path) -> None:
    with pytest.raises(LogtoConfigError, match="Logto 1.38 or later"):
        start_device_sign_in_blocking(config_for(logto, "native"))
    login = cli(cli_env(logto, logto.native, tmp_path), "login")
    out, err = login.communicate(timeout=60)
    assert (login.returncode, out) == (2, "")
    assert "device sign-in needs Logto 1.38 or later" in err
