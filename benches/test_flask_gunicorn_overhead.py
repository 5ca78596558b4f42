"""What ``@authenticated`` costs a Flask view under gunicorn: a signed-in request to an
``@authenticated`` view against the same request to a view that reads the session without the
SDK, both in one app under gunicorn with 4 sync workers (the cookie session), loaded by wrk.

The two views are loaded alternately, three times each after a warm-up, so a slow patch of the
shared machine hits both; the printed ratios (requests per second of the guarded view over the
plain one) are recorded in BENCHMARKS.md. Nothing is asserted about them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal

import httpx
import pytest
from test_flask_e2e import BENCHES, provider, serve, wrk  # noqa: F401 (the provider fixture)

from provider_harness import Provider, complete_sign_in

RUNS = 3


def test_authenticated_view_against_a_plain_session_view_under_gunicorn(provider: Provider) -> None:  # noqa: F811
    if shutil.which("wrk") is None:
        pytest.fail("wrk is not installed (apt-get install wrk)")
    env = {
        **os.environ,
        "LOGTO_ENDPOINT": provider.endpoint,
        "APP_SECRET_KEY": secrets.token_hex(16),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(BENCHES), os.environ.get("PYTHONPATH")])),
    }
    process, url = serve("overhead_app", env)
    try:
        provider.add_redirect_uris("web-app", [url + "/callback"])
        browser = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
        to_provider = browser.get("/sign-in")
        browser.get(complete_sign_in(to_provider.headers["Location"], url + "/callback"))
        assert browser.get("/guarded").status_code == 200
        cookie = browser.cookies["session"]
        wrk(url + "/plain", cookie)  # warm both, then measure alternately
        wrk(url + "/guarded", cookie)
        print()
        for run in range(RUNS):
            plain = wrk(url + "/plain", cookie)
            guarded = wrk(url + "/guarded", cookie)
            assert plain["errors"] == 0 and guarded["errors"] == 0
            ratio = guarded["rps"] / plain["rps"]
            print(f"run {run + 1}: plain {plain}, guarded {guarded}, ratio {ratio:.2f}")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
