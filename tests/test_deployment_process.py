"""Processes as servers run them: forked workers and interpreter exit.

Every SDK object works in a child forked after the parent used it (even with a request in
flight in another thread), the parent keeps working, and a process that awaited the SDK exits
with its own exit code every time.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

from conftest import REDIRECT_URI, run
from logto_rs import LogtoClient, LogtoConfig, MemoryStorage
from provider_harness import Provider, complete_sign_in
from serving import SCRIPTS, app_env

EXIT_RUNS = int(os.environ.get("LOGTO_EXIT_RUNS", "200"))


def refresh_token(provider: Provider) -> str:
    """A refresh token of a fresh session of the never-rotating web app."""
    storage = MemoryStorage()
    client = LogtoClient(
        LogtoConfig(
            endpoint=provider.endpoint,
            appId="web-no-rotate",
            appSecret="web-no-rotate-secret",
            resources=["https://api.example.com"],
        ),
        storage=storage,
    )
    url = run(client.signIn(REDIRECT_URI))
    run(client.handleSignInCallback(complete_sign_in(url, REDIRECT_URI)))
    token = client.getRefreshToken()
    assert token
    return token


def script_env(provider: Provider, **values: str) -> dict[str, str]:
    return app_env({"LOGTO_ENDPOINT": provider.endpoint, **values})


@pytest.mark.parametrize("mode", ["idle", "in-flight"])
def test_every_object_works_in_a_forked_child_and_the_parent_survives(provider: Provider, mode: str) -> None:
    env = script_env(
        provider, PARENT_REFRESH_TOKEN=refresh_token(provider), CHILD_REFRESH_TOKEN=refresh_token(provider)
    )
    if mode == "in-flight":
        provider.fault("userinfo", "hang", delay_ms=1500)
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "fork_child.py"), mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr  # the parent neither crashed nor failed a call
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["child_status"] == 0, done.stderr  # the child's calls worked, none hung
    if mode == "in-flight":
        assert report["in_flight"] == {"sub": "user-alice"}, report
    assert "Fatal Python error" not in done.stderr


def test_a_process_that_awaited_the_sdk_always_exits_with_its_own_code(provider: Provider) -> None:
    env = script_env(provider, REFRESH_TOKEN=refresh_token(provider))

    def once(_: int) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, str(SCRIPTS / "exit_after_use.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return done.returncode, done.stderr

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(once, range(EXIT_RUNS)))
    failures = [(code, err[-500:]) for code, err in outcomes if code != 0 or "Fatal Python error" in err]
    assert failures == [], f"{len(failures)} of {EXIT_RUNS} runs failed: {failures[:3]}"
