"""A session whose ID token has expired is not signed in as it is: the guards of every framework
renew the ID token with the refresh token (and verify the new one), or treat the session as
signed out when it cannot be renewed."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import Request
from fastapi_server import serve
from fastapi_server import sign_in as sign_in_fastapi
from test_fastapi import make_app as make_fastapi_app
from test_flask import make_app as make_flask_app
from test_flask import sign_in as sign_in_flask

import django_site
from logto_rs.flask import FlaskSessionStorage
from provider_harness import Provider, decode_jwt

django_site.setup()

from django.test import Client  # noqa: E402
from test_django import logto, sign_in_django  # noqa: E402, F401

from logto_rs.django import conf  # noqa: E402

EXPIRED_IN_2001 = 1_000_000_000


def expired(provider: Provider, id_token: str) -> str:
    """The same ID token, signed by the provider, but expired since 2001."""
    claims = decode_jwt(id_token)[1]
    return provider.sign_jwt({**claims, "iat": EXPIRED_IN_2001 - 3600, "exp": EXPIRED_IN_2001})


def assert_renewed(id_token: str) -> None:
    assert decode_jwt(id_token)[1]["exp"] > time.time()


@pytest.mark.parametrize("refresh_token", ["kept", "lost"])
def test_flask(provider: Provider, refresh_token: str) -> None:
    app = make_flask_app(provider, FlaskSessionStorage())
    alice = app.test_client()
    sign_in_flask(alice)
    with alice.session_transaction() as session:
        session["logto_idToken"] = expired(provider, session["logto_idToken"])
        if refresh_token == "lost":
            del session["logto_refreshToken"]
    response = alice.get("/protected")
    if refresh_token == "lost":
        assert response.status_code == 401
        return
    assert response.json == {"sub": "user-alice", "kind": "IdTokenClaims"}
    with alice.session_transaction() as session:
        assert_renewed(session["logto_idToken"])


@pytest.mark.parametrize("refresh_token", ["kept", "lost"])
def test_fastapi(provider: Provider, refresh_token: str) -> None:
    app, _ = make_fastapi_app(provider)

    @app.post("/plant-expired")
    async def plant(request: Request) -> dict[str, Any]:
        request.session["logto_idToken"] = expired(provider, request.session["logto_idToken"])
        if refresh_token == "lost":
            del request.session["logto_refreshToken"]
        return {}

    @app.get("/id-token")
    async def id_token(request: Request) -> dict[str, Any]:
        return {"id_token": request.session.get("logto_idToken")}

    with serve(app) as url:
        alice: httpx.Client = sign_in_fastapi(url)
        assert alice.post("/plant-expired").status_code == 200
        response = alice.get("/me")
        if refresh_token == "lost":
            assert response.status_code == 401
            return
        assert response.json() == {"sub": "user-alice"}
        assert_renewed(alice.get("/id-token").json()["id_token"])


@pytest.mark.usefixtures("logto")
@pytest.mark.filterwarnings("ignore::logto_rs.django.middleware.LogtoInsecureCookieWarning")
@pytest.mark.parametrize("refresh_token", ["kept", "lost"])
def test_django(provider: Provider, refresh_token: str) -> None:
    alice = Client()
    sign_in_django(alice)
    prefix = conf.option("SESSION_PREFIX")
    session = alice.session
    session[prefix + "idToken"] = expired(provider, session[prefix + "idToken"])
    if refresh_token == "lost":
        del session[prefix + "refreshToken"]
    session.save()
    if refresh_token == "lost":
        assert alice.get("/claims/", HTTP_ACCEPT="application/json").status_code == 401
        assert alice.get("/").json() == {"user": None, "sub": None}  # the Django login ended too
        return
    assert alice.get("/claims/").json() == {"sub": "user-alice"}
    assert_renewed(alice.session[prefix + "idToken"])
