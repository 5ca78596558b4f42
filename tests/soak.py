"""The soak: Flask under gunicorn (4 workers) and FastAPI under uvicorn (2 workers) on one real
Redis Cluster (three masters), against the development provider, all on loopback, for a bounded
time. ``bash .ci/soak`` runs it for 20 minutes; CI runs it for 2 (``.ci/test``).

Virtual users sign in (public ``spa-app``: its refresh token rotates), ask for a 2-second access
token (so sessions refresh all the time), organization tokens, and call a bearer-guarded API with
fresh and repeated M2M tokens; each session ends with a sign-out, a back-channel logout, or is
left alive. Another worker runs device sign-ins. Every answer is checked.

It fails (exit status 1) on any unexpected answer or exception, on a refresh token presented
twice (a second refresh of one token), on a leak trend (a worker's RSS or descriptors growing
between the middle and the end of the run beyond a bound), and on any session key left in Redis
once every live session has signed out. It prints the figures (RELIABILITY.md) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

TESTS = Path(__file__).resolve().parent
sys.path[:0] = [str(TESTS), str(TESTS / "scripts")]

from fastapi_server import uvicorn_process  # noqa: E402
from redis_topologies import redis_cluster  # noqa: E402

from logto_rs import LogtoConfig, LogtoM2MClient, LogtoM2MConfig, MemoryStorage  # noqa: E402
from logto_rs.device import start_device_sign_in_blocking  # noqa: E402
from provider_harness import Provider, complete_device_sign_in, complete_sign_in  # noqa: E402
from serving import app_env, gunicorn  # noqa: E402

API = "https://api.example.com"
EVENT = "http://schemas.openid.net/event/backchannel-logout"
RSS_GROWTH_KB = 40_000  # per worker, middle to end of the run
FD_GROWTH = 8


class Stats:
    """Latencies and answers, shared by the driver's threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []
        self.live: dict[str, httpx.Client] = {}

    def call(
        self, name: str, expected: tuple[int, ...], send: Any, *args: Any, **kwargs: Any
    ) -> httpx.Response | None:
        """``send(*args, **kwargs)``, timed; an exception or an unexpected status is an error."""
        began = time.perf_counter()
        try:
            answer: httpx.Response = send(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - every failure is recorded
            self.error(f"{name}: {type(error).__name__}: {error}")
            return None
        elapsed = time.perf_counter() - began
        with self.lock:
            self.latencies.append(elapsed)
            self.counts[name] += 1
        if answer.status_code not in expected:
            self.error(f"{name}: {answer.status_code} {answer.text[:200]}")
            return None
        return answer

    def error(self, message: str) -> None:
        with self.lock:
            self.errors.append(message)
        print("ERROR", message, file=sys.stderr, flush=True)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else 0.0


def sign_in(stats: Stats, url: str) -> httpx.Client | None:
    browser = httpx.Client(base_url=url, follow_redirects=False, timeout=30)
    started = stats.call("sign-in", (302,), browser.get, "/sign-in")
    if started is None:
        return None
    callback = complete_sign_in(started.headers["Location"], url + "/callback")
    if stats.call("callback", (302,), browser.get, callback) is None:
        return None
    return browser


def user(stats: Stats, provider: Provider, urls: list[str], m2m: LogtoM2MClient, deadline: float) -> None:
    repeated = m2m.blocking.getAccessToken(API).accessToken
    while time.monotonic() < deadline:
        url = random.choice(urls)
        browser = sign_in(stats, url)
        if browser is None:
            continue
        key = uuid.uuid4().hex
        with stats.lock:
            stats.live[key] = browser
        sid = None
        for step in range(random.randint(5, 15)):
            answer = stats.call("token", (200,), browser.get, "/token")
            if answer is not None:
                sid = answer.json()["sid"]
            if step % 3 == 0:
                stats.call("org-token", (200,), browser.get, "/org-token")
            bearer = repeated if step % 2 else m2m.blocking.getAccessToken(API).accessToken
            stats.call("api", (200,), httpx.get, url + "/api", headers={"Authorization": f"Bearer {bearer}"})
            time.sleep(random.uniform(0.1, 0.4))
        ending = random.random()
        if ending < 0.45:
            stats.call("sign-out", (302, 303), browser.post, "/sign-out", headers={"Origin": url})
        elif ending < 0.8 and sid:
            token = provider.sign_jwt(
                {
                    "iss": provider.issuer,
                    "aud": "spa-app",
                    "iat": int(time.time()),
                    "jti": uuid.uuid4().hex,
                    "events": {EVENT: {}},
                    "sid": sid,
                    "sub": "user-alice",
                },
                {"typ": "logout+jwt"},
            )
            stats.call(
                "backchannel-logout",
                (200,),
                httpx.post,
                url + "/backchannel-logout",
                data={"logout_token": token},
            )
            stats.call("ended-session", (302, 401), browser.get, "/token")
        else:
            continue  # left alive
        with stats.lock:
            del stats.live[key]
        browser.close()


def devices(stats: Stats, provider: Provider, deadline: float) -> None:
    config = LogtoConfig(endpoint=provider.endpoint, appId="cli-app", resources=[API])
    while time.monotonic() < deadline:
        began = time.perf_counter()
        try:
            started = start_device_sign_in_blocking(config, MemoryStorage())
            approving = threading.Thread(
                target=complete_device_sign_in, args=(started.verificationUriComplete,)
            )
            approving.start()
            client = started.waitBlocking()
            approving.join()
            assert client.getAccessToken(API)
        except Exception as error:  # noqa: BLE001 - every failure is recorded
            stats.error(f"device sign-in: {type(error).__name__}: {error}")
            continue
        with stats.lock:
            stats.counts["device sign-in"] += 1
            stats.latencies.append(time.perf_counter() - began)
        time.sleep(2)


def workers(stats: Stats, url: str, count: int) -> dict[int, dict[str, int]]:
    """Each worker's pid, RSS (kB) and descriptors, from enough /health answers to reach all."""
    seen: dict[int, dict[str, int]] = {}
    for _ in range(200):
        if len(seen) == count:
            break
        answer = httpx.get(url + "/health", timeout=10).json()
        seen[answer["pid"]] = {"rss_kb": answer["rss_kb"], "fds": answer["fds"]}
    return seen


def redis_figures(cluster: Any) -> dict[str, int]:
    client = cluster.client()
    try:
        nodes = [client.get_redis_connection(node) for node in client.get_primaries()]
        keys = sum(int(node.dbsize()) for node in nodes)
        used = sum(int(node.info("memory")["used_memory"]) for node in nodes)
    finally:
        client.close()
    return {"keys": keys, "used_memory": used}


class Refreshes:
    """The provider's refresh-token requests, gathered before its log (10 000 entries) rolls."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.seen: dict[int, str] = {}

    def poll(self) -> None:
        for entry in self.provider.requests(path="/oidc/token", grant_type="refresh_token"):
            self.seen[entry["id"]] = entry["form"]["refresh_token"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--log-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "logto-soak")
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    stats = Stats()
    with ExitStack() as stack:
        provider = stack.enter_context(Provider().start())
        provider.set_device_flow(interval=1)
        cluster = stack.enter_context(redis_cluster())
        env = {"LOGTO_ENDPOINT": provider.endpoint, "APP_SECRET_KEY": secrets.token_hex(16), **cluster.env()}
        flask = stack.enter_context(
            gunicorn(
                "soak_app:flask_app",
                app_env({**env, "SOAK_SERVER": "gunicorn"}),
                "/health",
                args.log_dir / "gunicorn.log",
            )
        )
        fastapi = stack.enter_context(
            uvicorn_process(
                "soak_app:fastapi_app", env, args.log_dir / "uvicorn.log", workers=2, ready="/health", pids=2
            )
        )
        urls = [flask.url, fastapi.url]
        provider.add_redirect_uris("spa-app", [u + "/callback" for u in urls], [u + "/" for u in urls])
        # ID tokens carry the session's sid (the driver posts the logout tokens itself).
        provider.set_backchannel_logout("spa-app", flask.url + "/backchannel-logout")
        m2m = LogtoM2MClient(
            LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
        )
        refreshes = Refreshes(provider)
        start = {"flask": workers(stats, flask.url, 4), "fastapi": workers(stats, fastapi.url, 2)}
        began = time.monotonic()
        deadline = began + args.seconds
        threads = [
            threading.Thread(target=user, args=(stats, provider, urls, m2m, deadline))
            for _ in range(args.users)
        ]
        threads.append(threading.Thread(target=devices, args=(stats, provider, deadline)))
        for thread in threads:
            thread.start()
        middle: dict[str, Any] = {}
        while any(thread.is_alive() for thread in threads):
            time.sleep(2)
            refreshes.poll()
            if not middle and time.monotonic() > began + args.seconds / 2:
                middle = {"flask": workers(stats, flask.url, 4), "fastapi": workers(stats, fastapi.url, 2)}
        for thread in threads:
            thread.join()
        refreshes.poll()
        end = {"flask": workers(stats, flask.url, 4), "fastapi": workers(stats, fastapi.url, 2)}
        at_end = {**redis_figures(cluster), "live_sessions": len(stats.live)}
        at_end["session_keys"] = len(
            cluster.keys("logto:{*}:[air]*")
        )  # idToken, refreshToken, accessTokenMap
        at_end["tombstones"] = len(cluster.keys("logto:{*}:ended"))
        # Every live session signs out: no session key, lock or index member may remain.
        for key, browser in list(stats.live.items()):
            url = str(browser.base_url).rstrip("/")
            stats.call("sign-out", (302, 303), browser.post, "/sign-out", headers={"Origin": url})
            del stats.live[key]
        leftover = [k.decode() for k in cluster.keys("logto:*") if not k.endswith(b":ended")]
        index_members = [k.decode() for k in cluster.keys("logto-sessions:*") if b":ended" not in k]
        presented = list(refreshes.seen.values())
        twice = [token for token, n in Counter(presented).items() if n > 1]
        figures = {
            "seconds": args.seconds,
            "requests": sum(stats.counts.values()),
            "by_kind": dict(stats.counts),
            "errors": len(stats.errors),
            "p50_ms": round(percentile(stats.latencies, 0.5) * 1000, 1),
            "p99_ms": round(percentile(stats.latencies, 0.99) * 1000, 1),
            "workers_start": start,
            "workers_middle": middle,
            "workers_end": end,
            "redis_at_end": at_end,
            "refresh_requests": len(presented),
            "refresh_tokens_presented_twice": len(twice),
            "token_requests_per_refresh": round(len(presented) / max(1, len(set(presented))), 3),
            "keys_left_after_sign_out": leftover[:10],
            "index_members_left": index_members[:10],
        }
        print(json.dumps(figures, indent=2))
        failures = [*stats.errors[:20]]
        if twice:
            failures.append(f"{len(twice)} refresh tokens were presented twice")
        if leftover or index_members:
            failures.append(f"keys left after every session signed out: {leftover[:5]} {index_members[:5]}")
        for app in ("flask", "fastapi"):
            for pid, now in end[app].items():
                then = middle.get(app, {}).get(pid)
                if then is None:
                    failures.append(f"{app} worker {pid} was replaced during the run")
                    continue
                if now["rss_kb"] - then["rss_kb"] > RSS_GROWTH_KB:
                    failures.append(f"{app} worker {pid}: RSS grew {now['rss_kb'] - then['rss_kb']} kB")
                if now["fds"] - then["fds"] > FD_GROWTH:
                    failures.append(f"{app} worker {pid}: descriptors grew {now['fds'] - then['fds']}")
        for name, server in (("gunicorn", flask), ("uvicorn", fastapi)):
            if "Traceback" in server.log_text():
                failures.append(f"{name} logged a traceback ({args.log_dir})")
    for failure in failures:
        print("FAIL", failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
