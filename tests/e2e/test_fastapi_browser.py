"""A person uses the FastAPI demo in a real headless Chromium: signs in on the provider's form,
sees their claims and userinfo, has the page call the protected API with their access token,
signs out. With cookie sessions and with Redis sessions."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from fastapi_server import serve
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from e2e_support import sign_in_as_alice, wait_for, wait_for_text
from logto_rs.fastapi import RedisSessionStorage
from provider_harness import Provider

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from fastapi_app import create_app, demo_config  # noqa: E402


@pytest.fixture(params=["cookie", "redis"])
def demo(provider: Provider, request: pytest.FixtureRequest) -> Iterator[str]:
    storage: Optional[RedisSessionStorage] = None
    if request.param == "redis":
        storage = RedisSessionStorage(request.getfixturevalue("redis_url"), prefix="logto-e2e:")
    app = create_app(demo_config(provider.endpoint, "web-app", "web-app-secret"), storage)
    with serve(app) as url:
        yield url


def test_a_person_signs_in_calls_the_api_and_signs_out(
    provider: Provider,
    demo: str,
    browser: WebDriver,  # noqa: F811  (test_browser's fixture)
) -> None:
    sign_in_as_alice(browser, demo, provider.endpoint)
    browser.find_element(By.ID, "userinfo").click()
    userinfo = json.loads(wait_for(browser, "userinfo-json"))
    assert userinfo["sub"] == "user-alice" and "org-acme" in userinfo["organizations"]

    browser.get(demo + "/")
    browser.find_element(By.ID, "call-api").click()
    assert wait_for(browser, "api-status") == "200"
    api = json.loads(wait_for(browser, "api-json"))
    assert api["user"] == "user-alice" and "read:products" in api["scopes"]

    browser.get(demo + "/protected/organizations")
    assert "org-acme: scopes" in wait_for(browser, "org-tokens")
    browser.get(demo + "/")
    assert wait_for(browser, "name") == "Alice Liddell"  # the session cookie survived

    browser.find_element(By.ID, "sign-out").click()
    # The home page is the sign-out's start and end: wait for its signed-out version.
    wait_for_text(browser, "status", "You are signed out.")
    assert browser.current_url == demo + "/"
    browser.get(demo + "/protected/api")
    WebDriverWait(browser, 20).until(expected_conditions.title_is("Sign in"))  # protected again
