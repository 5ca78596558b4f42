"""Back-channel logout at the FastAPI endpoint: a logout token ends the session it names (Redis
sessions deleted, cookie sessions revoked); a forged one is answered 400."""

from __future__ import annotations

import asyncio
import concurrent.futures
import signal
import time
from datetime import timedelta
from typing import Any

import anyio.to_thread
import httpx
import pytest
import redis
from fastapi import Depends, FastAPI
from fastapi_server import serve
from fastapi_server import sign_in as sign_in_fastapi
from test_backchannel_logout import logout_token
from test_fastapi import make_app as make_fastapi_app
from test_fastapi import web_config

from conftest import redis_server
from logto_rs import IdTokenClaims, LogtoConfigError
from logto_rs.backchannel import RedisReplayStore, RedisRevocations, RedisSessionIndex
from logto_rs.fastapi import LogtoFastAPI
from logto_rs.fastapi import RedisSessionStorage as FastAPIRedisStorage
from logto_rs.redis_storage import AsyncRedisClient
from provider_harness import Provider


@pytest.fixture(autouse=True)
def session_required(provider: Provider) -> None:
    provider.set_backchannel_logout("web-app", "http://127.0.0.1:9/backchannel-logout")


class RefusingExecutor(concurrent.futures.ThreadPoolExecutor):
    """An event loop's default executor that runs nothing (``asyncio.to_thread`` fails)."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        raise RuntimeError("this app may not run anything in a worker thread")


def without_worker_threads(app: FastAPI) -> FastAPI:
    """At startup the app's thread pool (Starlette's ``run_in_threadpool``) gets one worker,
    which the loop itself then holds, and the loop's default executor refuses work: whatever
    needs a thread hangs or fails, and only the event loop serves the app."""

    async def take_the_threads() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = 1
        await limiter.acquire_on_behalf_of(take_the_threads)
        asyncio.get_running_loop().set_default_executor(RefusingExecutor())

    app.router.on_startup.append(take_the_threads)
    return app


@pytest.mark.parametrize("sessions", ["redis", "cookie"])
def test_the_fastapi_endpoint_ends_the_session(provider: Provider, redis_url: str, sessions: str) -> None:
    storage = FastAPIRedisStorage(redis_url, prefix="logto-bcl-fastapi:") if sessions == "redis" else None
    app, logto = make_fastapi_app(provider, LogtoFastAPI(web_config(provider), storage=storage))

    @app.get("/sid")
    async def sid(user: IdTokenClaims = Depends(logto.claims())) -> dict[str, Any]:  # noqa: B008
        return {"sid": user.sid}

    # The callback's index entry, the endpoint and the checks are all awaited on the event loop.
    with serve(without_worker_threads(app)) as url:
        laptop, phone = sign_in_fastapi(url), sign_in_fastapi(url)
        bad = laptop.post(
            "/backchannel-logout", data={"logout_token": logout_token(provider, sign="attacker")}
        )
        assert (bad.status_code, bad.json()["error"]) == (400, "invalid_request")
        assert bad.headers["Cache-Control"] == "no-store"
        token = logout_token(provider, sub="user-alice", sid=laptop.get("/sid").json()["sid"])
        response = phone.post("/backchannel-logout", data={"logout_token": token})
        assert (response.status_code, response.json()) == (200, {})
        assert response.headers["Cache-Control"] == "no-store"
        assert laptop.get("/me").status_code == 401
        assert phone.get("/me").json() == {"sub": "user-alice"}


@pytest.mark.parametrize("sessions", ["redis", "cookie"])
def test_a_logout_during_a_refresh_is_not_undone(provider: Provider, redis_url: str, sessions: str) -> None:
    storage = FastAPIRedisStorage(redis_url, prefix="logto-bcl-inflight:") if sessions == "redis" else None
    config = web_config(provider, resources=["https://api.example.com"])
    app, logto = make_fastapi_app(provider, LogtoFastAPI(config, storage=storage))

    @app.get("/sid")
    async def sid(user: IdTokenClaims = Depends(logto.claims())) -> dict[str, Any]:  # noqa: B008
        return {"sid": user.sid}

    with serve(app) as url:
        alice = sign_in_fastapi(url)
        token = logout_token(provider, sub="user-alice", sid=alice.get("/sid").json()["sid"])
        assert alice.post("/expire").status_code == 200  # the next token needs a refresh
        provider.fault("token", "hang", delay_ms=2500)  # the refresh is slow: the logout comes meanwhile
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            refreshing = pool.submit(alice.get, "/token")
            deadline = time.monotonic() + 10
            while not provider.requests(path="/oidc/token", grant_type="refresh_token"):
                assert time.monotonic() < deadline, "the refresh did not start"
                time.sleep(0.02)
            logto_server = httpx.Client(base_url=url)
            assert logto_server.post("/backchannel-logout", data={"logout_token": token}).status_code == 200
            assert refreshing.result(timeout=20).status_code == 200  # the refresh itself completed
        for _ in range(2):
            assert alice.get("/me").status_code == 401
        if sessions == "redis":
            assert not redis.Redis.from_url(redis_url).keys("logto-bcl-inflight:*:idToken")


def test_a_copied_cookie_stops_working_after_sign_out(provider: Provider) -> None:
    app, _ = make_fastapi_app(provider)
    with serve(app) as url:
        alice = sign_in_fastapi(url)
        copied = alice.cookies.get("session")
        assert alice.post("/sign-out", headers={"Origin": url}).status_code == 303
        thief = httpx.Client(base_url=url, cookies={"session": copied or ""})
        assert thief.get("/me").status_code == 401


def test_a_stalled_revocation_store_freezes_no_other_route(provider: Provider) -> None:
    with redis_server() as (url, server):
        shared = AsyncRedisClient(url, socket_timeout=2, socket_connect_timeout=2)
        logto = LogtoFastAPI(web_config(provider), session_index=RedisRevocations(shared, "web-app"))
        app, _ = make_fastapi_app(provider, logto)

        @app.get("/health")
        async def health() -> dict[str, str]:
            return {"status": "ok"}

        with serve(without_worker_threads(app)) as base:
            alice = sign_in_fastapi(base)
            assert alice.get("/me").status_code == 200
            server.send_signal(signal.SIGSTOP)
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                signed_in = pool.submit(alice.get, "/me")
                time.sleep(0.3)  # the signed-in request now waits for Redis
                started = time.monotonic()
                assert httpx.get(base + "/health", timeout=1).json() == {"status": "ok"}
                assert time.monotonic() - started < 0.5
                answer = signed_in.result(timeout=20)
                waited = time.monotonic() - started
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "5"
            assert 1.0 < waited < 10  # the socket timeout (2 s) ended the wait
            server.send_signal(signal.SIGCONT)
            assert alice.get("/me").status_code == 200


@pytest.mark.parametrize("store", ["revocations", "index", "replays"])
def test_a_synchronous_redis_client_is_refused(provider: Provider, redis_url: str, store: str) -> None:
    client = redis.Redis.from_url(redis_url)
    stores: dict[str, Any] = {
        "revocations": {"session_index": RedisRevocations(client, "web-app")},
        "index": {"session_index": RedisSessionIndex(client, "web-app")},
        "replays": {"replay_store": RedisReplayStore(client)},
    }
    with pytest.raises(LogtoConfigError, match="synchronous redis.Redis") as refused:
        LogtoFastAPI(web_config(provider), **stores[store])
    assert refused.value.code == "config.invalid"
    assert redis_url not in str(refused.value)


def test_revocations_of_cookie_sessions_outlive_the_cookie(provider: Provider) -> None:
    from fastapi import FastAPI
    from starlette.middleware.sessions import SessionMiddleware

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="test-secret", max_age=31 * 24 * 3600)
    logto = LogtoFastAPI(web_config(provider))
    logto.init_app(app)
    assert logto.backchannel is not None
    assert logto.backchannel.sessions.ttl == timedelta(days=31)
