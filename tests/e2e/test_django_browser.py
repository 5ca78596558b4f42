"""A person uses the Django demo (examples/django_project, served by its own serve.py) in a real
headless Chromium: signs in on the provider's page, sees their user in a ``@login_required``
view and in the Django admin, lets a page call the DRF endpoint with their access token, and
signs out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from e2e_support import sign_in_as_alice, wait_for
from provider_harness import Provider, free_port
from serving import running

SERVE = Path(__file__).resolve().parents[2] / "examples" / "django_project" / "serve.py"


@pytest.fixture
def demo(provider: Provider, tmp_path: Path) -> Iterator[str]:
    """The Django demo on a free port, as its documented command serves it, against the provider."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider.add_redirect_uris("web-app", [f"{url}/auth/callback/"], [f"{url}/"])
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_site.settings",
        "PORT": str(port),
        "LOGTO_ENDPOINT": provider.endpoint,
        "LOGTO_APP_ID": "web-app",
        "LOGTO_APP_SECRET": "web-app-secret",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
    }
    log = tmp_path / "runserver.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, str(SERVE)], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    with running(process, url, log, "/"):
        yield url
    access_log = log.read_text()
    assert "code=[redacted]" in access_log and "Traceback" not in access_log, access_log


def test_a_person_uses_the_django_demo_in_chromium(provider: Provider, demo: str, browser: WebDriver) -> None:
    sign_in_as_alice(browser, demo, provider.endpoint)

    # A @login_required view.
    browser.find_element(By.ID, "userinfo").click()
    userinfo = json.loads(wait_for(browser, "userinfo-json"))
    assert userinfo["sub"] == "user-alice" and "org-acme" in userinfo["organizations"]

    # The Django admin (the product-admin role made alice staff and superuser).
    browser.get(demo + "/admin/auth/user/")
    WebDriverWait(browser, 20).until(expected_conditions.presence_of_element_located((By.ID, "result_list")))
    assert "user-alice" in browser.find_element(By.ID, "result_list").text

    # The page's script calls the DRF endpoint with the user's access token.
    browser.get(demo + "/protected/api/")
    browser.find_element(By.ID, "call-api").click()
    WebDriverWait(browser, 20).until(
        lambda driver: driver.find_element(By.ID, "api-result").text.startswith("200 ")
    )
    result = json.loads(browser.find_element(By.ID, "api-result").text[4:])
    assert result["sub"] == "user-alice" and result["scope"] == "read:products"

    # Sign out: the provider ends its session and sends the browser back to the demo.
    browser.get(demo + "/")
    button = browser.find_element(By.ID, "sign-out")
    button.click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(button))
    WebDriverWait(browser, 20).until(expected_conditions.url_to_be(demo + "/"))
    assert wait_for(browser, "status") == "You are signed out."
    browser.get(demo + "/protected/userinfo/")
    WebDriverWait(browser, 20).until(expected_conditions.title_is("Sign in"))  # protected again
