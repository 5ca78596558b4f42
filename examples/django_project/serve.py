"""Run the logto-rs Django demo: ``.venv/bin/python examples/django_project/serve.py``.

Without ``LOGTO_ENDPOINT`` it starts the project's Logto-compatible development provider on
127.0.0.1 and registers the demo's URLs there; sign in as ``alice`` / ``alice-password``. To use
a real tenant, set ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID`` and ``LOGTO_APP_SECRET`` and register
``http://127.0.0.1:8000/auth/callback/`` (redirect URI) and ``http://127.0.0.1:8000/`` (post
sign-out redirect URI) for the app. ``PORT`` changes the port, ``LOGTO_REDIS_URL`` keeps the
sessions (and the refresh lock) in Redis.

It creates the SQLite database (``manage.py migrate``), then serves the site with
``manage.py runserver``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"


@contextlib.contextmanager
def development_provider(base_url: str) -> Iterator[None]:
    """The development provider, with the demo's URLs registered for ``web-app``."""
    sys.path.insert(0, str(HERE.parent.parent / "tests"))
    from provider_harness import Provider

    with Provider().start() as provider:
        provider.add_redirect_uris("web-app", [f"{base_url}/auth/callback/"], [f"{base_url}/"])
        os.environ.update(
            LOGTO_ENDPOINT=provider.endpoint, LOGTO_APP_ID="web-app", LOGTO_APP_SECRET="web-app-secret"
        )
        print(f"Logto-compatible development provider on {provider.endpoint}", flush=True)
        print(f"logto-rs Django demo on {base_url}/  sign in as alice / alice-password", flush=True)
        yield


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # unwinds, so the development provider stops too


def main() -> None:
    """Migrate, then serve the demo (against LOGTO_ENDPOINT or the development provider)."""
    signal.signal(signal.SIGTERM, _stop)
    port = os.environ.get("PORT", "8000")
    base_url = f"http://{HOST}:{port}"
    sys.path.insert(0, str(HERE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_site.settings")
    use_provider = not os.environ.get("LOGTO_ENDPOINT")
    with development_provider(base_url) if use_provider else contextlib.nullcontext():
        import django
        from django.core.management import call_command, execute_from_command_line

        django.setup()
        call_command("migrate", verbosity=0)
        execute_from_command_line(["manage.py", "runserver", f"{HOST}:{port}", "--noreload"])


if __name__ == "__main__":
    main()
