"""A Sentinel failover in the middle of a refresh burst: the Flask app under gunicorn (4 workers)
over Sentinel (a master, a replica, three sentinels, all real), the public ``spa-app`` whose
refresh token rotates at every refresh.

One session's access token expires and 16 parallel requests come; as soon as the provider has
seen the refresh, the master is killed (SIGKILL) and Sentinel promotes the replica. Every answer
is 200 or 503 (the store out of reach), never a 500. Afterwards the session still works, with
no refresh token presented twice, or it ends cleanly (signed out: 401), and another user's
session is untouched (its grant was not revoked).
"""

from __future__ import annotations

import concurrent.futures
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from redis_topologies import MASTER_NAME, Topology, redis_sentinel, wait_until

from provider_harness import Provider, complete_sign_in
from serving import BURST, Server, app_env, gunicorn, refreshes


@pytest.fixture
def failing_over() -> Iterator[Topology]:
    """A Sentinel deployment of this test's own: the test kills its master."""
    with redis_sentinel() as topology:
        yield topology


def sign_in(url: str, username: str) -> httpx.Client:
    browser = httpx.Client(base_url=url, follow_redirects=False, timeout=60)
    to_provider = browser.get("/sign-in")
    assert to_provider.status_code == 302
    assert (
        browser.get(
            complete_sign_in(to_provider.headers["Location"], url + "/callback", username=username)
        ).status_code
        == 302
    )
    return browser


def settled(browser: httpx.Client) -> httpx.Response:
    """The session's answer once the store answers again (503 while the failover runs)."""
    deadline = time.monotonic() + 60
    while True:
        answer = browser.get("/token")
        if answer.status_code != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_a_failover_mid_refresh_loses_no_session_and_answers_no_500(
    provider: Provider, failing_over: Topology, tmp_path: Path
) -> None:
    env = app_env(
        {"LOGTO_ENDPOINT": provider.endpoint, "APP_SECRET_KEY": secrets.token_hex(16), **failing_over.env()}
    )
    with gunicorn("deploy_app:app", env, "/health", tmp_path / "gunicorn.log") as server:
        provider.add_redirect_uris("spa-app", [f"{server.url}/callback"], [f"{server.url}/"])
        alice, bob = sign_in(server.url, "alice"), sign_in(server.url, "bob")
        assert bob.get("/token").status_code == 200
        assert alice.post("/expire").status_code == 200
        provider.reset()

        def one(_: int) -> int:
            with httpx.Client(base_url=server.url, cookies=alice.cookies, timeout=60) as tab:
                return tab.get("/token").status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=BURST) as pool:
            answers = [pool.submit(one, n) for n in range(BURST)]
            wait_until(lambda: bool(refreshes(provider)), "the burst's refresh", timeout=30)
            failing_over.processes["master"].kill()
            statuses = [answer.result() for answer in answers]
        assert set(statuses) <= {200, 503}, statuses
        replica = failing_over.ports["replica"]
        wait_until(
            lambda: (
                redis.Redis(port=failing_over.sentinels[0][1]).sentinel_get_master_addr_by_name(MASTER_NAME)[
                    1
                ]
                == replica
            ),
            "the replica's promotion",
            timeout=60,
        )
        check(provider, server, alice, bob)


def check(provider: Provider, server: Server, alice: httpx.Client, bob: httpx.Client) -> None:
    after = settled(alice)
    assert after.status_code in (200, 401), after.text[:300]
    presented = [r["form"]["refresh_token"] for r in refreshes(provider)]
    if after.status_code == 200:
        # The session works, and works at its next expiry too: its grant is alive.
        assert alice.post("/expire").status_code == 200
        assert settled(alice).status_code == 200
        presented = [r["form"]["refresh_token"] for r in refreshes(provider)]
        assert len(presented) == len(set(presented)), "a refresh token was presented twice"
    # Bob's session, on the same Redis, is untouched: his grant was never revoked.
    assert bob.post("/expire").status_code == 200
    assert settled(bob).status_code == 200
    log = server.log_text()
    assert "Traceback" not in log, log
