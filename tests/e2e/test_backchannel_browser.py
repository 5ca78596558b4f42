"""Signing out at the provider ends the user's sessions in every app, on every worker, with no
action from the browser: two apps (the demo under gunicorn with 4 workers and Redis sessions,
and the demo on the cookie session in one process) and headless Chromium."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from werkzeug.serving import BaseWSGIServer, make_server

from e2e_support import sign_in_as_alice, wait_for, wait_for_text
from provider_harness import Provider
from serving import Server, app_env, burst, gunicorn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def redis_app(provider: Provider, redis_url: str, tmp_path: Path) -> Iterator[Server]:
    """The demo (web-app) under gunicorn, 4 workers, sessions in Redis."""
    env = app_env(
        {
            "LOGTO_ENDPOINT": provider.endpoint,
            "REDIS_URL": redis_url,
            "FLASK_SECRET_KEY": secrets.token_hex(16),
        }
    )
    with gunicorn("backchannel_app:app", env, "/health", tmp_path / "gunicorn.log") as served:
        provider.set_backchannel_logout("web-app", served.url + "/backchannel-logout")
        yield served


@pytest.fixture
def cookie_app(provider: Provider) -> Iterator[str]:
    """The demo as another app (web-no-rotate) on Flask's cookie session, in this process."""
    import sys

    sys.path.insert(0, str(EXAMPLES))
    from flask_app import _config, create_app

    app = create_app(_config(provider.endpoint, "web-no-rotate", "web-no-rotate-secret"))
    app.config["SESSION_COOKIE_NAME"] = "other_app_session"  # same host as the other app
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    provider.add_redirect_uris("web-no-rotate", [url + "/callback"], [url + "/"])
    provider.set_backchannel_logout("web-no-rotate", url + "/backchannel-logout")
    try:
        yield url
    finally:
        server.shutdown()
        thread.join(timeout=10)


def sign_in_again(driver: WebDriver, app: str) -> None:
    """Sign in to another app while signed in at the provider: no login page."""
    driver.get(app + "/")
    assert wait_for(driver, "status") == "You are signed out."
    driver.find_element(By.ID, "sign-in").click()
    assert wait_for(driver, "name") == "Alice Liddell"


def sign_out(driver: WebDriver, app: str) -> None:
    driver.get(app + "/")
    driver.find_element(By.ID, "sign-out").click()
    wait_for_text(driver, "status", "You are signed out.")


def pages_on_every_worker(driver: WebDriver, server: Server) -> set[str]:
    """The home page, asked 16 times in parallel (all 4 workers) with the browser's cookie."""
    cookies = httpx.Cookies()
    for cookie in driver.get_cookies():
        if cookie["name"] == "session":
            cookies.set("session", cookie["value"], domain="127.0.0.1")
    statuses = set()
    for response in burst(server.url, cookies, "/"):
        assert response.status_code == 200
        statuses.add("signed out" if "You are signed out." in response.text else "signed in")
    return statuses


def test_signing_out_at_the_provider_ends_the_session_in_every_app(
    provider: Provider, redis_app: Server, cookie_app: str, browser: WebDriver, redis_url: str
) -> None:
    store = redis.Redis.from_url(redis_url)
    other_tests_sessions = set(store.keys("logto:*:idToken"))
    sign_in_as_alice(browser, redis_app.url, provider.endpoint)
    sign_in_again(browser, cookie_app)
    assert pages_on_every_worker(browser, redis_app) == {"signed in"}

    # Signing out from the cookie app ends the Redis app's session on every worker.
    sign_out(browser, cookie_app)
    assert pages_on_every_worker(browser, redis_app) == {"signed out"}
    assert set(store.keys("logto:*:idToken")) <= other_tests_sessions

    # And the other way: signing out from the Redis app signs the cookie app's cookie out.
    sign_in_as_alice(browser, cookie_app, provider.endpoint)
    sign_in_again(browser, redis_app.url)
    sign_out(browser, redis_app.url)
    browser.get(cookie_app + "/")
    assert wait_for(browser, "status") == "You are signed out."
    redis_app.assert_no_worker_crashed()
    assert "back-channel logout" not in provider.stderr(), provider.stderr()
