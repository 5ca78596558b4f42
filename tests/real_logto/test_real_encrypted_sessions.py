"""Encrypted cookie sessions against the real Logto: a sign-in in Flask, FastAPI and Django with
the session sealed (``logto_rs.sessions``), then a guarded view reads the claims; the cookie hides
the tokens Logto issued and the user's id."""

import asyncio
import base64
import json
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI
from flask import Flask, g

from conftest import RealLogto, experience_sign_in
from logto_rs import IdTokenClaims, LogtoConfig
from logto_rs.fastapi import LogtoFastAPI
from logto_rs.flask import LogtoFlask, authenticated
from logto_rs.sessions import SessionSealer, generate_key
from logto_rs.sessions.flask import EncryptedSessionInterface
from logto_rs.sessions.starlette import EncryptedSessionMiddleware

HOST = "127.0.0.1:5000"  # a redirect URI registered for the `web` app
ORIGIN = f"http://{HOST}"
KEY = generate_key()


def config(logto: RealLogto) -> LogtoConfig:
    return LogtoConfig(endpoint=logto.endpoint, appId=logto.web[0], appSecret=logto.web[1], scopes=["email"])


def assert_hidden(cookie: str, session: dict[str, Any], user_id: str) -> None:
    """No token of the session, nor the user's id, in the cookie or in its base64 decoding."""
    assert cookie.startswith(f"v1.{SessionSealer(KEY).key_ids[0]}.")
    body = cookie.rsplit(".", 1)[1]
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("latin-1")
    tokens = [value for key, value in session.items() if key.startswith("logto_") and len(str(value)) > 20]
    assert any(str(token).count(".") == 2 for token in tokens)  # the ID token is among them
    for text in (cookie, decoded):
        for secret in [
            *tokens,
            *(str(token).split(".")[1] for token in tokens if str(token).count(".") == 2),
        ]:
            assert str(secret) not in text
        assert user_id not in text


def test_flask_sign_in_with_an_encrypted_session(logto: RealLogto) -> None:
    app = Flask(__name__)
    app.config["SERVER_NAME"] = HOST
    app.session_interface = EncryptedSessionInterface([KEY])
    LogtoFlask(app, config(logto))

    @app.route("/protected")
    @authenticated()
    def protected() -> dict[str, Any]:
        return {"sub": g.user.sub, "email": g.user.email}

    client = app.test_client()
    assert client.get("/protected").status_code == 401
    to_logto = client.get("/sign-in?next=/protected")
    callback = experience_sign_in(to_logto.headers["Location"], logto)
    assert callback.startswith(ORIGIN + "/callback?")
    assert client.get(callback.removeprefix(ORIGIN)).headers["Location"] == "/protected"
    assert client.get("/protected").get_json() == {
        "sub": logto.user_id("alice"),
        "email": "alice@example.com",
    }
    cookie = client.get_cookie("session", domain="127.0.0.1")
    assert cookie is not None
    session = app.session_interface.get_signing_serializer(app).loads(cookie.value)
    assert_hidden(cookie.value, session, logto.user_id("alice"))


def test_fastapi_sign_in_with_an_encrypted_session(logto: RealLogto) -> None:
    app = FastAPI()
    app.add_middleware(EncryptedSessionMiddleware, keys=[KEY])
    integration = LogtoFastAPI(config(logto))
    integration.init_app(app)

    @app.get("/me")
    async def me(user: Annotated[IdTokenClaims, Depends(integration.claims())]) -> dict[str, Any]:
        return {"sub": user.sub, "email": user.email}

    async def journey() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as browser:
            assert (await browser.get("/me")).status_code == 401
            to_logto = await browser.get("/sign-in", params={"next": "/me"})
            callback = await asyncio.to_thread(experience_sign_in, to_logto.headers["Location"], logto)
            back = await browser.get(callback)
            assert (back.status_code, back.headers["Location"]) == (302, "/me"), back.text
            me = (await browser.get("/me")).json()
            assert me == {"sub": logto.user_id("alice"), "email": "alice@example.com"}
            cookie = str(browser.cookies.get("session"))
        opened = SessionSealer(KEY).open(cookie, "session")
        assert opened is not None
        assert_hidden(cookie, json.loads(opened), logto.user_id("alice"))

    asyncio.run(journey())


def test_django_sign_in_with_an_encrypted_session(logto: RealLogto) -> None:
    import django_site

    django_site.setup()
    from django.conf import settings
    from django.test import Client, override_settings

    from logto_rs.sessions.django import SessionStore

    values = {
        **settings.LOGTO,
        "ENDPOINT": logto.endpoint,
        "APP_ID": logto.web[0],
        "APP_SECRET": logto.web[1],
        "SCOPES": ["email"],
        "RESOURCES": [],
        "REDIRECT_URI": ORIGIN + "/callback",
    }
    with override_settings(
        LOGTO=values,
        SESSION_ENGINE="logto_rs.sessions.django",
        LOGTO_SESSION_KEYS=[KEY],
        ROOT_URLCONF="django_site.real_logto_urls",
        ALLOWED_HOSTS=["127.0.0.1"],
    ):
        browser = Client(HTTP_HOST=HOST)
        assert browser.get("/claims/").status_code == 401
        to_logto = browser.get("/auth/sign-in/", {"next": "/claims/"})
        callback = experience_sign_in(to_logto["Location"], logto)
        assert callback.startswith(ORIGIN + "/callback?")
        back = browser.get(callback.removeprefix(ORIGIN))
        assert (back.status_code, back["Location"]) == (302, "/claims/"), back.content
        assert browser.get("/claims/").json() == {"sub": logto.user_id("alice")}
        cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
        assert_hidden(cookie, SessionStore(cookie).load(), logto.user_id("alice"))
