"""What ``@authenticated`` costs a Flask view, in process: a signed-in request to an
``@authenticated`` view against the same request to a view that reads the session without the
SDK (Flask's test client, the cookie session, no network once signed in).

The two views are timed in alternating batches, so a slow patch of the shared machine hits both;
the printed ratio (requests per second of the guarded view over the plain one) is recorded in
BENCHMARKS.md. Nothing is asserted about it.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask, g, session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from logto_rs import LogtoConfig  # noqa: E402
from logto_rs.flask import LogtoFlask, authenticated  # noqa: E402
from provider_harness import Provider, complete_sign_in  # noqa: E402

BATCHES = 15
REQUESTS = 300


def test_authenticated_view_against_a_plain_session_view() -> None:
    with Provider().start() as provider:
        app = Flask(__name__)
        app.secret_key = "bench"
        app.config["SERVER_NAME"] = "127.0.0.1"
        config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
        LogtoFlask(app, config)

        @app.route("/guarded")
        @authenticated()
        def guarded() -> dict[str, Any]:
            return {"sub": g.user.sub}

        @app.route("/plain")
        def plain() -> dict[str, Any]:
            return {"signed_in": session.get("logto_idToken") is not None}

        client = app.test_client()
        to_provider = client.get("/sign-in").headers["Location"]
        client.get(
            complete_sign_in(to_provider, "http://127.0.0.1/callback").removeprefix("http://127.0.0.1")
        )
        assert client.get("/guarded").status_code == 200
        times: dict[str, list[float]] = {"/guarded": [], "/plain": []}
        for _ in range(BATCHES):
            for path, batch in times.items():
                start = time.perf_counter()
                for _ in range(REQUESTS):
                    client.get(path)
                batch.append((time.perf_counter() - start) / REQUESTS)
        guarded_s, plain_s = statistics.median(times["/guarded"]), statistics.median(times["/plain"])
        print(
            f"\n@authenticated {guarded_s * 1e6:.0f} µs, plain session view {plain_s * 1e6:.0f} µs "
            f"(medians of {BATCHES} batches of {REQUESTS}); requests/s ratio {plain_s / guarded_s:.2f}"
        )
