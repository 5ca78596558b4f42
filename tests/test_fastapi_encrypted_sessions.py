"""Encrypted cookie sessions in FastAPI: ``EncryptedSessionMiddleware`` in place of Starlette's
``SessionMiddleware``, served by uvicorn against the development provider.

The SDK's ``CookieSessionStorage`` works on it unchanged; the cookie hides every token and claim;
an altered, moved, expired or foreign-key cookie is an empty session (401, never a 500); keys
rotate; the SDK's cookie checks (4 KB, ``https_only``) see the middleware.
"""

import time
import warnings
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi_server import serve, sign_in
from starlette.middleware.sessions import SessionMiddleware
from test_encrypted_sessions import NEW_KEY, OLD_KEY, assert_unreadable, secrets_in

from logto_rs import IdTokenClaims, LogtoConfig, LogtoConfigError
from logto_rs.fastapi import (
    CookieSessionStorage,
    LogtoFastAPI,
    LogtoInsecureCookieWarning,
)
from logto_rs.sessions import SessionSealer
from logto_rs.sessions.starlette import EncryptedSessionMiddleware
from provider_harness import Provider


def make_app(provider: Provider, keys: list[str], **options: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(EncryptedSessionMiddleware, keys=keys, **options)
    config = LogtoConfig(
        endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret", scopes=["email"]
    )
    logto = LogtoFastAPI(
        config, storage=CookieSessionStorage(cookie_name=options.get("session_cookie", "session"))
    )
    logto.init_app(app)

    @app.get("/me")
    async def me(user: Annotated[IdTokenClaims, Depends(logto.claims())]) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email}

    @app.get("/session")
    async def read(request: Request) -> dict[str, Any]:
        return dict(request.session)

    @app.post("/touch")
    async def touch(request: Request) -> dict[str, Any]:
        request.session["touched"] = True
        return {}

    @app.post("/clear")
    async def clear(request: Request) -> dict[str, Any]:
        request.session.clear()
        return {}

    @app.post("/big")
    async def big(request: Request) -> dict[str, Any]:
        size = int(request.query_params["size"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            logto.storage.for_request(request).set("accessTokenMap", "x" * size)
        return {"warnings": [str(w.category.__name__) for w in caught]}

    return app


@pytest.fixture
def served(provider: Provider) -> Iterator[str]:
    with serve(make_app(provider, [NEW_KEY])) as url:
        yield url


def cookie_of(browser: httpx.Client, name: str = "session") -> str:
    value = browser.cookies.get(name)
    assert value is not None
    return value


def test_a_fastapi_sign_in_leaves_a_cookie_in_which_no_token_or_claim_can_be_read(served: str) -> None:
    browser = sign_in(served)
    assert browser.get("/me").json() == {"sub": "user-alice", "email": "alice@example.com"}
    cookie = cookie_of(browser)
    assert cookie.startswith(f"v1.{SessionSealer(NEW_KEY).key_ids[0]}.")
    tokens = {key: value for key, value in browser.get("/session").json().items() if key.startswith("logto_")}
    assert {"logto_idToken", "logto_refreshToken"} <= set(tokens)
    assert_unreadable(cookie, secrets_in(tokens))


def test_an_altered_moved_or_foreign_cookie_is_an_empty_session(
    provider: Provider, served: str, caplog: pytest.LogCaptureFixture
) -> None:
    browser = sign_in(served)
    cookie = cookie_of(browser)
    prefix, body = cookie.rsplit(".", 1)
    middle = len(body) // 2
    altered = f"{prefix}.{body[:middle]}{'B' if body[middle] == 'A' else 'A'}{body[middle + 1 :]}"
    foreign = SessionSealer(NEW_KEY).seal(b"[1, 2]", "session", 60)  # opens, but is not a session
    with caplog.at_level("INFO", logger="logto_rs.sessions"):
        for value in [altered, cookie[:-8], "v1.AAAAAAAA." + body, "null", foreign]:
            answer = httpx.get(served + "/me", cookies={"session": value})
            assert answer.status_code == 401, value
            assert httpx.get(served + "/session", cookies={"session": value}).json() == {}
    assert all(body[10:30] not in record.getMessage() for record in caplog.records)
    # Sealed for "session", it does not open as another cookie of an app using that name.
    with serve(make_app(provider, [NEW_KEY], session_cookie="other")) as other:
        assert httpx.get(other + "/me", cookies={"other": cookie}).status_code == 401
    assert httpx.get(served + "/me", cookies={"session": cookie}).status_code == 200


def test_keys_rotate_the_old_key_opens_and_the_new_key_seals(provider: Provider) -> None:
    with serve(make_app(provider, [OLD_KEY])) as before:
        old_cookie = cookie_of(sign_in(before))
    old_id, new_id = SessionSealer([OLD_KEY, NEW_KEY]).key_ids
    with serve(make_app(provider, [NEW_KEY, OLD_KEY])) as rotated:
        assert httpx.get(rotated + "/me", cookies={"session": old_cookie}).json()["sub"] == "user-alice"
        new_cookie = httpx.post(rotated + "/touch", cookies={"session": old_cookie}).cookies["session"]
    assert old_cookie.split(".")[1] == old_id and new_cookie.split(".")[1] == new_id
    with serve(make_app(provider, [NEW_KEY])) as dropped:
        assert httpx.get(dropped + "/me", cookies={"session": new_cookie}).status_code == 200
        assert httpx.get(dropped + "/me", cookies={"session": old_cookie}).status_code == 401


def test_a_cookie_older_than_max_age_is_expired(provider: Provider, caplog: pytest.LogCaptureFixture) -> None:
    with serve(make_app(provider, [NEW_KEY], max_age=1)) as url:
        browser = sign_in(url)
        assert browser.get("/me").status_code == 200
        time.sleep(2.1)
        with caplog.at_level("INFO", logger="logto_rs.sessions"):
            # Sent as it was, past its Max-Age (a browser would have dropped it; a thief would not).
            assert httpx.get(url + "/me", cookies={"session": cookie_of(browser)}).status_code == 401
    assert "seal.expired" in caplog.text


def test_the_cookie_keeps_starlettes_options_and_session_semantics(provider: Provider) -> None:
    app = make_app(
        provider, [NEW_KEY], session_cookie="app_session", https_only=True, same_site="strict", path="/"
    )
    with serve(app) as url:
        browser = httpx.Client(base_url=url)
        touched = browser.post("/touch")
        set_cookie = touched.headers["set-cookie"]
        assert set_cookie.startswith("app_session=v1.")
        for attribute in ["path=/", "Max-Age=1209600", "httponly", "samesite=strict", "secure"]:
            assert attribute in set_cookie, set_cookie
        # An unmodified session is not written back; a cleared one is deleted.
        browser.cookies.set("app_session", set_cookie.split(";")[0].split("=", 1)[1])
        assert "set-cookie" not in browser.get("/session").headers
        assert browser.post("/clear").headers["set-cookie"].startswith("app_session=null;")


def test_the_4kb_check_measures_the_sealed_cookie(provider: Provider) -> None:
    app = make_app(provider, [NEW_KEY])
    middleware = EncryptedSessionMiddleware(app, keys=[NEW_KEY])
    with serve(app) as url:
        # The cookie sent is exactly what the middleware measures.
        written = httpx.post(url + "/big", params={"size": 1000})
        assert written.json() == {"warnings": []}
        assert len(written.headers["set-cookie"]) == middleware.cookie_size(
            {"logto_accessTokenMap": "x" * 1000}
        )
        # A write whose sealed cookie passes the limit warns.
        too_large = httpx.post(url + "/big", params={"size": 5000})
        assert too_large.json() == {"warnings": ["LogtoSessionTooLargeWarning"]}


def test_the_4kb_check_warns_where_only_the_sealed_cookie_is_too_large(provider: Provider) -> None:
    app = make_app(provider, [NEW_KEY])
    middleware = EncryptedSessionMiddleware(app, keys=[NEW_KEY])
    session = {"logto_accessTokenMap": "x" * 3000}
    sealed, signed = middleware.cookie_size(session), CookieSessionStorage().cookie_size(session)
    storage = CookieSessionStorage(max_cookie_bytes=(sealed + signed) // 2)
    app = FastAPI()
    app.add_middleware(EncryptedSessionMiddleware, keys=[NEW_KEY])

    @app.post("/write")
    async def write(request: Request) -> dict[str, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            storage.for_request(request).set("accessTokenMap", "x" * 3000)
        return {"warnings": [str(w.category.__name__) for w in caught]}

    with serve(app) as url:
        assert httpx.post(url + "/write").json() == {"warnings": ["LogtoSessionTooLargeWarning"]}


def test_the_insecure_cookie_check_sees_the_middleware(provider: Provider) -> None:
    # Served on a host other than loopback, without https_only: the SDK warns once.
    with serve(make_app(provider, [NEW_KEY], https_only=False)) as url:
        with pytest.warns(LogtoInsecureCookieWarning, match="https_only=True"):
            httpx.get(url + "/me", headers={"Host": "app.example"})
    with serve(make_app(provider, [NEW_KEY], https_only=True)) as url:
        with warnings.catch_warnings():
            warnings.simplefilter("error", LogtoInsecureCookieWarning)
            assert httpx.get(url + "/me", headers={"Host": "app.example"}).status_code == 401


def test_the_middleware_takes_keys_not_a_secret_key(provider: Provider) -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match="keys"):
        EncryptedSessionMiddleware(app, keys=[NEW_KEY], secret_key="s")
    with pytest.raises(LogtoConfigError, match="session key"):
        EncryptedSessionMiddleware(app, keys=["0" * 64])
    assert issubclass(EncryptedSessionMiddleware, SessionMiddleware)
    assert NEW_KEY not in repr(EncryptedSessionMiddleware(app, keys=[NEW_KEY]))
