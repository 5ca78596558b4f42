"""The sign-in routes of Flask, FastAPI and Django against the real Logto: ``next`` travels as
the sign-in's ``postRedirectUri``, the sign-up route opens Logto's sign-up screen, and each
framework's context (claims, userinfo, resource and organization tokens) is the signed-in user's.

Each site is served on 127.0.0.1 by a real server in this process, with ``redirect_uri`` set to
the URL registered for the ``web`` app (``http://127.0.0.1:5000/callback``, as behind a proxy):
the callback the browser is sent to is answered by the site's own callback route.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi_server import serve as serve_asgi
from flask import Flask
from starlette.middleware.sessions import SessionMiddleware
from test_conformance import PATHS, Site, context_answer, serve_wsgi

from conftest import RealLogto, config_for, experience_sign_in
from logto_rs import LogtoContext
from logto_rs.fastapi import LogtoFastAPI
from logto_rs.flask import LogtoFlask, get_context

REDIRECT_URI = "http://127.0.0.1:5000/callback"  # registered for the `web` app


def flask_app(logto: RealLogto) -> Flask:
    app = Flask(__name__)
    app.secret_key = "real-logto-journeys"
    LogtoFlask(app, config_for(logto, "web"), redirect_uri=REDIRECT_URI)

    @app.route("/context")
    def context() -> dict[str, Any]:
        full = get_context(fetch_user_info=True, access_tokens=True, organization_tokens=True)
        return context_answer(get_context(), full)

    return app


def fastapi_app(logto: RealLogto) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="real-logto-journeys")
    site = LogtoFastAPI(config_for(logto, "web"), redirect_uri=REDIRECT_URI)
    site.init_app(app)
    every = site.context(fetch_user_info=True, access_tokens=True, organization_tokens=True)

    @app.get("/context")
    async def context(
        plain: LogtoContext = Depends(site.context()),  # noqa: B008
        full: LogtoContext = Depends(every),  # noqa: B008
    ) -> dict[str, Any]:
        return context_answer(plain, full)

    return app


@contextmanager
def served(framework: str, logto: RealLogto) -> Iterator[str]:
    if framework == "flask":
        with serve_wsgi(flask_app(logto)) as url:
            yield url
    elif framework == "fastapi":
        with serve_asgi(fastapi_app(logto)) as url:
            yield url
    else:
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import override_settings

        config = config_for(logto, "web")
        values = {
            **settings.LOGTO,
            "ENDPOINT": logto.endpoint,
            "APP_ID": config.appId,
            "APP_SECRET": config.appSecret,
            "SCOPES": config.scopes,
            "RESOURCES": config.resources,
            "AUDIENCE": logto.resource,
            "REDIRECT_URI": REDIRECT_URI,
        }
        with override_settings(LOGTO=values), serve_wsgi(WSGIHandler()) as url:
            yield url


@pytest.fixture(params=["flask", "fastapi", "django"])
def site(request: pytest.FixtureRequest, logto: RealLogto) -> Iterator[Site]:
    with served(request.param, logto) as url:
        yield Site(url, *PATHS[request.param])


def through_logto(site: Site, browser: httpx.Client, to_logto: httpx.Response, logto: RealLogto) -> str:
    """Sign in at Logto from the site's redirect, then on the site's callback; returns where it goes."""
    assert to_logto.status_code == 302, to_logto.text
    callback = experience_sign_in(to_logto.headers["Location"], logto)
    assert callback.startswith(REDIRECT_URI + "?")
    back = browser.get(site.callback + "?" + urlsplit(callback).query)
    assert back.status_code == 302, back.text
    return back.headers["Location"]


def test_next_comes_back_from_the_callback_and_other_origins_are_dropped(
    site: Site, logto: RealLogto
) -> None:
    browser = site.browser()
    target = site.context + "?tab=1"
    assert through_logto(site, browser, browser.get(site.sign_in, params={"next": target}), logto) == target
    elsewhere = site.browser()
    to_logto = elsewhere.get(site.sign_in, params={"next": "https://evil.example/"})
    assert through_logto(site, elsewhere, to_logto, logto) == "/"


def test_the_sign_up_route_opens_the_sign_up_screen(site: Site, logto: RealLogto) -> None:
    browser = site.browser()
    to_logto = browser.get(site.sign_up, params={"next": site.context})
    assert parse_qs(urlsplit(to_logto.headers["Location"]).query)["interaction_mode"] == ["signUp"]
    assert through_logto(site, browser, to_logto, logto) == site.context
    assert browser.get(site.context).json()["sub"] == logto.user_id("alice")


def test_the_context_is_the_signed_in_users(site: Site, logto: RealLogto) -> None:
    browser = site.browser()
    assert browser.get(site.context).json()["is_authenticated"] is False
    through_logto(site, browser, browser.get(site.sign_in), logto)
    context = browser.get(site.context).json()
    assert context["is_authenticated"] is True
    assert context["sub"] == context["user_info"] == logto.user_id("alice")
    assert context["access_tokens"] == sorted(config_for(logto, "web").resources)
    assert logto.organization_id in context["organization_tokens"]
