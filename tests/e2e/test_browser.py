"""A person signs in with a real headless Chromium: the demo app, the provider's login form,
back signed in, the userinfo page, sign out, the signed-out page."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

from e2e_support import sign_in_as_alice, wait_for, wait_for_text
from provider_harness import Provider

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
from flask_app import _config, create_app  # noqa: E402


@pytest.fixture
def demo(provider: Provider) -> Iterator[str]:
    """The demo app served on 127.0.0.1 (a free port) against the provider."""
    app = create_app(_config(provider.endpoint, "web-app", "web-app-secret"))
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_a_person_signs_in_and_out_in_chromium(provider: Provider, demo: str, browser: WebDriver) -> None:
    sign_in_as_alice(browser, demo, provider.endpoint)
    browser.find_element(By.ID, "userinfo").click()
    userinfo = json.loads(wait_for(browser, "userinfo-json"))
    assert userinfo["sub"] == "user-alice"
    assert userinfo["custom_data"] == {"plan": "pro", "preferences": {"theme": "dark"}}
    assert "org-acme" in userinfo["organizations"]

    browser.get(demo + "/protected/organizations")
    assert "org-acme: scopes" in wait_for(browser, "org-tokens")

    browser.get(demo + "/")
    browser.find_element(By.ID, "sign-out").click()
    # The provider signs out and sends the browser back to the app's signed-out page. That page
    # is also where sign-out starts, so wait for its signed-out text, not for its URL (which
    # matches before the browser has left).
    wait_for_text(browser, "status", "You are signed out.")
    assert browser.current_url == demo + "/"
    browser.get(demo + "/protected/userinfo")
    WebDriverWait(browser, 20).until(expected_conditions.title_is("Sign in"))  # protected again
