"""`python -m logto_rs` / `logto-rs` end to end, in a subprocess against the provider.

Secrets come from the environment or stdin, never from arguments, and never appear on stdout or
stderr unless they are what was asked for (an access token, a created personal access token).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from provider_harness import Provider, decode_jwt, free_port

API = "https://api.example.com"
ALICE_PAT = "pat_alice_ci_0123456789abcdefABCDEF"
EXPIRED_PAT = "pat_alice_expired_0123456789abcdef"
SECRETS = [ALICE_PAT, EXPIRED_PAT, "web-app-secret", "m2m-app-secret", "spa-app-secret"]


def cli(
    *args: str, env: dict[str, str], stdin: str = "", program: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOGTO_")}
    return subprocess.run(
        [*(program or [sys.executable, "-m", "logto_rs"]), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
        check=False,
    )


def no_secrets(result: subprocess.CompletedProcess[str], allowed: tuple[str, ...] = ()) -> None:
    for secret in SECRETS:
        if secret not in allowed:
            assert secret not in result.stdout and secret not in result.stderr


@pytest.fixture
def web_env(provider: Provider) -> dict[str, str]:
    return {
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": "web-app",
        "LOGTO_APP_SECRET": "web-app-secret",
    }


@pytest.fixture
def m2m_env(provider: Provider) -> dict[str, str]:
    return {
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": "m2m-app",
        "LOGTO_APP_SECRET": "m2m-app-secret",
    }


def test_exchange_with_the_token_in_the_environment(web_env: dict[str, str]) -> None:
    result = cli(
        "exchange", "--resource", API, "--scope", "read:products", env={**web_env, "LOGTO_PAT": ALICE_PAT}
    )
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and result.stderr == ""
    claims = decode_jwt(token)[1]
    assert claims["sub"] == "user-alice" and claims["aud"] == API and claims["scope"] == "read:products"
    no_secrets(result)


def test_exchange_with_the_token_on_stdin_as_json(provider: Provider, web_env: dict[str, str]) -> None:
    result = cli(
        "exchange",
        "--json",
        "--scope",
        "read:members",
        "--organization-id",
        "org-acme",
        env=web_env,
        stdin=ALICE_PAT + "\n",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["issuedTokenType"] == "urn:ietf:params:oauth:token-type:access_token"
    assert data["tokenType"] == "Bearer" and data["scopes"] == ["read:members"]
    assert 3500 < data["expiresIn"] <= 3600 and data["expiresAt"].endswith("Z")
    assert decode_jwt(data["accessToken"])[1]["aud"] == "urn:logto:organization:org-acme"
    no_secrets(result)


def test_the_app_secret_and_the_token_can_both_come_from_stdin(provider: Provider) -> None:
    env = {"LOGTO_ENDPOINT": provider.endpoint}
    result = cli(
        "--app-id",
        "web-app",
        "--app-secret-stdin",
        "exchange",
        env=env,
        stdin=f"web-app-secret\n{ALICE_PAT}\n",
    )
    assert result.returncode == 0, result.stderr
    assert [entry["authorization"] for entry in provider.requests(path="/oidc/token")] == [
        {"scheme": "basic", "client_id": "web-app"}
    ]
    no_secrets(result)


def test_exchange_failures_have_exit_codes_and_no_secrets(
    provider: Provider, web_env: dict[str, str]
) -> None:
    expired = cli("exchange", env={**web_env, "LOGTO_PAT": EXPIRED_PAT})
    assert expired.returncode == 3 and expired.stdout == ""
    assert expired.stderr.startswith("logto-rs: error: ") and "[oauth.invalid_grant]" in expired.stderr
    no_secrets(expired)

    # A public app without token exchange: its client_id alone, and a message that says what to do.
    public = cli(
        "exchange",
        env={"LOGTO_ENDPOINT": provider.endpoint, "LOGTO_APP_ID": "spa-app", "LOGTO_PAT": ALICE_PAT},
    )
    assert public.returncode == 3
    assert (
        "enable token exchange for the app" in public.stderr
        and "[token_exchange.not_allowed]" in public.stderr
    )
    no_secrets(public)

    missing_pat = cli("exchange", env=web_env)
    assert missing_pat.returncode == 2 and "LOGTO_PAT" in missing_pat.stderr
    missing_endpoint = cli("exchange", env={"LOGTO_APP_ID": "web-app", "LOGTO_PAT": ALICE_PAT})
    assert missing_endpoint.returncode == 2 and "LOGTO_ENDPOINT" in missing_endpoint.stderr
    bad_endpoint = cli("exchange", env={**web_env, "LOGTO_ENDPOINT": "ftp://x", "LOGTO_PAT": ALICE_PAT})
    assert bad_endpoint.returncode == 2 and "[config.invalid]" in bad_endpoint.stderr
    unreachable = cli(
        "exchange",
        env={**web_env, "LOGTO_ENDPOINT": f"http://127.0.0.1:{free_port()}", "LOGTO_PAT": ALICE_PAT},
    )
    assert unreachable.returncode == 4 and "[network.error]" in unreachable.stderr
    usage = cli("exchange", "--no-such-option", env=web_env)
    assert usage.returncode == 2
    for result in (missing_pat, missing_endpoint, bad_endpoint, unreachable, usage):
        assert result.stdout == ""
        no_secrets(result)


def test_m2m_tokens(m2m_env: dict[str, str]) -> None:
    management = cli("m2m-token", "--management-api", "--json", env=m2m_env)
    assert management.returncode == 0, management.stderr
    data = json.loads(management.stdout)
    assert data["scopes"] == ["all"] and "issuedTokenType" not in data
    assert decode_jwt(data["accessToken"])[1]["aud"] == "https://default.logto.app/api"

    api = cli("m2m-token", "--resource", API, "--scope", "read:products write:products", env=m2m_env)
    assert api.returncode == 0, api.stderr
    assert decode_jwt(api.stdout.strip())[1]["scope"] == "read:products write:products"

    nothing = cli("m2m-token", env=m2m_env)
    assert nothing.returncode == 2 and "[config.invalid]" in nothing.stderr
    wrong = cli("m2m-token", "--resource", API, env={**m2m_env, "LOGTO_APP_SECRET": "spa-app-secret"})
    assert wrong.returncode == 3 and "[oauth.invalid_client]" in wrong.stderr
    no_secret = cli("m2m-token", "--resource", API, env={**m2m_env, "LOGTO_APP_SECRET": ""})
    assert no_secret.returncode == 2 and "LOGTO_APP_SECRET" in no_secret.stderr
    for result in (management, api, nothing, wrong, no_secret):
        no_secrets(result)


def test_personal_access_token_lifecycle(
    provider: Provider, m2m_env: dict[str, str], web_env: dict[str, str]
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = cli("pat", "create", "user-alice", name, "--expires-in", "30d", env=m2m_env)
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    assert value.startswith("pat_")
    try:
        listed = cli("pat", "list", "user-alice", env=m2m_env)
        assert listed.returncode == 0, listed.stderr
        lines = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()}
        assert lines["ci-token"][2] == "never" and len(lines[name]) == 3
        assert value not in listed.stdout  # values only with --show-values
        shown = cli("pat", "list", "user-alice", "--json", "--show-values", env=m2m_env)
        by_name = {token["name"]: token for token in json.loads(shown.stdout)}
        assert by_name[name]["value"] == value and by_name[name]["createdAt"].endswith("Z")

        exchanged = cli("exchange", env={**web_env, "LOGTO_PAT": value})
        assert exchanged.returncode == 0, exchanged.stderr

        duplicate = cli("pat", "create", "user-alice", name, env=m2m_env)
        assert duplicate.returncode == 3 and "[api.entity.unique_integrity_violation]" in duplicate.stderr

        renamed = cli("pat", "rename", "user-alice", name, f"{name}-renamed", "--json", env=m2m_env)
        assert renamed.returncode == 0, renamed.stderr
        assert json.loads(renamed.stdout)["name"] == f"{name}-renamed" and value not in renamed.stdout
        name = f"{name}-renamed"
    finally:
        deleted = cli("pat", "delete", "user-alice", name, env=m2m_env)
    assert deleted.returncode == 0 and deleted.stdout == "", deleted.stderr
    again = cli("pat", "delete", "user-alice", name, "--json", env=m2m_env)
    assert again.returncode == 3 and "[api.entity.not_found]" in again.stderr

    revoked = cli("exchange", env={**web_env, "LOGTO_PAT": value})
    assert revoked.returncode == 3 and "[oauth.invalid_grant]" in revoked.stderr
    assert value not in revoked.stderr
    for result in (listed, exchanged, duplicate, renamed, deleted, again, revoked):
        no_secrets(result)


def test_the_console_script(provider: Provider, m2m_env: dict[str, str]) -> None:
    script = Path(sys.executable).with_name("logto-rs")
    assert script.exists()
    result = cli("--json", "m2m-token", "--management-api", env=m2m_env, program=[str(script)])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scopes"] == ["all"]
    help_text = cli("--help", env={}, program=[str(script)])
    assert help_text.returncode == 0 and "Exit codes" in help_text.stdout


@pytest.mark.parametrize("example", ["pat_exchange.py", "m2m.py"])
def test_the_examples_run(
    provider: Provider, web_env: dict[str, str], m2m_env: dict[str, str], example: str
) -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / example
    env = {
        "pat_exchange.py": {**web_env, "LOGTO_PAT": ALICE_PAT},
        "m2m.py": {**m2m_env, "LOGTO_USER_ID": "user-alice"},
    }
    result = cli(env=env[example], program=[sys.executable, str(script)])
    assert result.returncode == 0, result.stderr
    assert "TokenExchangeResult(" in result.stdout or "MachineToken(" in result.stdout
    if example == "m2m.py":
        assert "ci-token: created 2023-11-14, expires never" in result.stdout
    no_secrets(result)


@pytest.mark.parametrize(
    "args",
    [
        ["pat", "create", "user-alice", "n", "--expires-in", "999999999d"],
        ["pat", "create", "user-alice", "n", "--expires-in", "9" * 5000 + "s"],
        ["pat", "create", "user-alice", "n", "--expires-at", "not a date"],
        ["bogus-command"],
        ["pat"],
        ["m2m-token", "--resource", API, "--management-api"],
        ["--timeout", "soon", "m2m-token"],
    ],
    ids=[
        "overflowing duration",
        "5000 digits",
        "bad date",
        "unknown command",
        "no action",
        "exclusive",
        "bad float",
    ],
)
def test_usage_errors_are_one_line_and_exit_2(m2m_env: dict[str, str], args: list[str]) -> None:
    result = cli(*args, env=m2m_env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("logto-rs: error: "), result.stderr
    assert "Traceback" not in result.stderr


def test_a_closed_stdout_is_a_one_line_failure(m2m_env: dict[str, str]) -> None:
    # The reader of the pipe is gone before the token is printed (`logto-rs m2m-token | true`).
    clean = {name: value for name, value in os.environ.items() if not name.startswith("LOGTO_")}
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "logto_rs", "m2m-token", "--management-api"],
            stdin=subprocess.DEVNULL,
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**clean, **m2m_env},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr
    assert result.stderr.splitlines() == ["logto-rs: error: stdout was closed before the result was written"]
    # And with stdout closed from the start (`logto-rs m2m-token >&-`).
    closed = subprocess.run(
        [sys.executable, "-m", "logto_rs", "m2m-token", "--management-api"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **m2m_env},
        timeout=60,
        check=False,
        preexec_fn=lambda: os.close(1),  # noqa: PLW1509 - the point of the test
    )
    assert closed.returncode == 1, closed.stderr
    assert closed.stderr.splitlines() == ["logto-rs: error: stdout is closed: nothing was printed"]
