"""The headless Chromium every browser journey uses (Debian's chromium and chromedriver)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

from selenium import webdriver
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


def wait_for(driver: WebDriver, element_id: str) -> str:
    """The text of the element ``element_id`` once it is on the page (20 s at most)."""
    element = WebDriverWait(driver, 20).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )
    return str(element.text)


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
