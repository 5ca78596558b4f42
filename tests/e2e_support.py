"""The headless Chromium every browser journey uses (Debian's chromium and chromedriver)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@contextlib.contextmanager
def chromium() -> Iterator[WebDriver]:
    """A fresh headless Chromium with a profile of its own, quit afterwards."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="logto-rs-e2e-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


DETACHED = (NoSuchElementException, StaleElementReferenceException, WebDriverException)
"""What reading an element of a page that is being replaced can raise (Chromium may say the node
"does not belong to the document"): retried until the wait's end."""


def wait_for(driver: WebDriver, element_id: str) -> str:
    """The text of the element ``element_id`` once it is on the page (20 s at most).

    The element is found and read in one step, again until it works: a page that is still
    being replaced (a redirect after load) can detach the element between the two.
    """

    def read(d: WebDriver) -> list[str]:
        return [str(d.find_element(By.ID, element_id).text)]

    return WebDriverWait(driver, 20, ignored_exceptions=DETACHED).until(read)[0]


def wait_for_text(driver: WebDriver, element_id: str, text: str) -> None:
    """Wait (20 s at most) until the element ``element_id`` contains ``text``, across page loads."""
    WebDriverWait(driver, 20, ignored_exceptions=DETACHED).until(
        expected_conditions.text_to_be_present_in_element((By.ID, element_id), text)
    )


def sign_in_as_alice(driver: WebDriver, demo: str, provider_endpoint: str) -> None:
    """From a demo's signed-out home page through the provider's login page, back signed in."""
    driver.get(demo + "/")
    assert wait_for(driver, "status") == "You are signed out."
    driver.find_element(By.ID, "sign-in").click()
    # The provider's login page.
    WebDriverWait(driver, 20).until(expected_conditions.title_is("Sign in"))
    assert driver.current_url.startswith(provider_endpoint + "/interaction/")
    driver.find_element(By.NAME, "username").send_keys("alice")
    driver.find_element(By.NAME, "password").send_keys("alice-password")
    driver.find_element(By.ID, "sign-in").click()
    # Back in the app, signed in.
    assert wait_for(driver, "name") == "Alice Liddell"
    assert driver.current_url == demo + "/"
