"""The deployed apps on the Redis deployments that outgrow one server: a Redis Cluster of three
masters and Sentinel (a master, a replica, three sentinels), all real, on loopback.

The journey, for Flask (gunicorn, 4 workers), FastAPI (uvicorn, 4 workers) and Django (gunicorn,
cache sessions in ``RedisClusterCache`` on the cluster): sign in, 8 requests over the workers, a
16-request burst after the access token expired with exactly one refresh (twice: the rotated
refresh token still works), and a sign-out that leaves no key of the session in Redis.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import httpx
import pytest
from fastapi_server import uvicorn_process
from redis_topologies import Topology

from provider_harness import Provider, complete_sign_in
from serving import WORKERS, app_env, assert_one_refresh_per_burst, gunicorn

TESTS = Path(__file__).resolve().parent


@pytest.fixture(params=["cluster", "sentinel"])
def deployment(request: pytest.FixtureRequest) -> Topology:
    topology: Topology = request.getfixturevalue(request.param)
    return topology


def sign_in(url: str, sign_in_path: str, callback_path: str) -> httpx.Client:
    browser = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    to_provider = browser.get(sign_in_path)
    assert to_provider.status_code == 302, to_provider.text
    back = browser.get(complete_sign_in(to_provider.headers["Location"], url + callback_path))
    assert back.status_code == 302, back.text
    return browser


def journey(
    provider: Provider,
    deployment: Topology,
    url: str,
    paths: dict[str, str],
    session_keys: Callable[[], list[bytes]],
) -> None:
    browser = sign_in(url, paths["sign-in"], paths["callback"])
    assert session_keys(), "the session is not in Redis"
    answers = [browser.get(paths["token"]) for _ in range(8)]
    assert [a.status_code for a in answers] == [200] * 8, [a.text[:200] for a in answers]
    assert {a.json()["sub"] for a in answers} == {"user-alice"}
    assert_one_refresh_per_burst(provider, browser, url, paths["expire"], paths["token"])
    form = {}
    page = browser.get(paths["sign-out"])  # the sign-out page (Django's sets the CSRF cookie)
    if "csrftoken" in browser.cookies:
        form = {"csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    assert page.status_code == 200, page.text[:300]
    out = browser.post(paths["sign-out"], data=form, headers={"Origin": url, "Referer": url + "/"})
    assert out.status_code in (302, 303), out.text[:300]
    assert browser.get(paths["token"]).status_code in (302, 401)
    assert session_keys() == [], "the sign-out left keys of the session"


def test_flask_journey(provider: Provider, deployment: Topology, tmp_path: Path) -> None:
    env = app_env(
        {"LOGTO_ENDPOINT": provider.endpoint, "APP_SECRET_KEY": secrets.token_hex(16), **deployment.env()}
    )
    with gunicorn("deploy_app:app", env, "/health", tmp_path / "gunicorn.log") as server:
        provider.add_redirect_uris("spa-app", [f"{server.url}/callback"], [f"{server.url}/"])
        paths = {"sign-in": "/sign-in", "callback": "/callback", "token": "/token", "expire": "/expire"}
        journey(
            provider,
            deployment,
            server.url,
            {**paths, "sign-out": "/sign-out"},
            lambda: deployment.keys("logto:*"),
        )
        server.assert_no_worker_crashed()


def test_fastapi_journey(provider: Provider, deployment: Topology, tmp_path: Path) -> None:
    env = {"LOGTO_ENDPOINT": provider.endpoint, "APP_SECRET_KEY": secrets.token_hex(16), **deployment.env()}
    with uvicorn_process(
        "fastapi_deploy_app:app",
        env,
        tmp_path / "uvicorn.log",
        workers=WORKERS,
        ready="/health",
        pids=WORKERS,
    ) as server:
        provider.add_redirect_uris("spa-app", [f"{server.url}/callback"], [f"{server.url}/"])
        paths = {"sign-in": "/sign-in", "callback": "/callback", "token": "/token", "expire": "/expire"}
        journey(
            provider,
            deployment,
            server.url,
            {**paths, "sign-out": "/sign-out"},
            lambda: deployment.keys("logto:*"),
        )
        assert server.process.poll() is None
        for sign in ("Traceback", "Child process", "died"):
            assert sign not in server.log_text()


@pytest.fixture
def django_server(provider: Provider, cluster: Topology, tmp_path: Path) -> Iterator[str]:
    env = app_env(
        {
            "DJANGO_SETTINGS_MODULE": "django_site.settings",
            "DJANGO_SECRET_KEY": secrets.token_hex(16),
            "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
            "LOGTO_ENDPOINT": provider.endpoint,
            "LOGTO_APP_ID": "spa-app",
            "LOGTO_APP_SECRET": "",
            "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
            **cluster.env(),
        },
        TESTS,
    )
    subprocess.run(
        [sys.executable, "-c", "import django_site; django_site.setup()"], env=env, check=True, timeout=120
    )
    with gunicorn("django_site.wsgi", env, "/health/", tmp_path / "gunicorn.log") as served:
        provider.add_redirect_uris("spa-app", [f"{served.url}/auth/callback/"], [f"{served.url}/"])
        yield served.url
        served.assert_no_worker_crashed()


def test_django_journey_with_cache_sessions_on_a_cluster(
    provider: Provider, cluster: Topology, django_server: str
) -> None:
    paths = {
        "sign-in": "/auth/sign-in/",
        "callback": "/auth/callback/",
        "token": "/token/",
        "expire": "/expire/",
        "sign-out": "/auth/sign-out/",
    }
    # Django's cache sessions and logto-rs's refresh lock are the only keys: none may remain.
    journey(provider, cluster, django_server, paths, lambda: cluster.keys("*django.contrib.sessions*"))
    assert cluster.keys("*logto_rs:lock*") == []
