"""The demos: the script runs the Flask demo's whole flow; the Flask demo's log keeps no secrets."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from werkzeug.serving import make_server

from logto_rs import LogtoConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import flask_app  # noqa: E402


@pytest.fixture
def demo_url() -> Iterator[str]:
    """The demo app on werkzeug's development server (as `app.run` serves it), on a free port."""
    # No request reaches the provider: the callback fails first (no sign-in session).
    config = LogtoConfig(endpoint="http://127.0.0.1:9", appId="web-app", appSecret="web-app-secret")
    server = make_server("127.0.0.1", 0, flask_app.create_app(config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_codes_and_states_stay_out_of_the_access_log(demo_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="werkzeug")
    httpx.get(f"{demo_url}/callback?code=the-code-0123&state=the-state-4567&iss=http%3A%2F%2Fx")
    httpx.get(f"{demo_url}/callback?error=access_denied&state=the-state-89ab")
    lines = [record.getMessage() for record in caplog.records if record.name == "werkzeug"]
    assert len(lines) == 2, lines
    assert "code=[redacted]&state=[redacted]&iss=" in lines[0]
    assert "error=access_denied&state=[redacted]" in lines[1]
    assert not any(secret in caplog.text for secret in ("the-code-0123", "the-state-4567", "the-state-89ab"))


def test_the_filter_is_installed_once() -> None:
    flask_app.redact_access_log()
    flask_app.redact_access_log()
    filters = logging.getLogger("werkzeug").filters
    assert sum(isinstance(f, flask_app.RedactCallbackQuery) for f in filters) == 1


def test_the_demo_script_runs_the_whole_flow() -> None:
    script = Path(__file__).resolve().parent.parent / "examples" / "demo.py"
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "3. authenticated: True" in out and '"sub": "user-alice"' in out
    assert "4. userinfo:" in out and '"plan": "pro"' in out  # custom_data, from the userinfo endpoint
    assert "org-acme: aud urn:logto:organization:org-acme, scopes read:members" in out
    assert "7. authenticated: False" in out
