"""The Django adapter of the web core: a request as the flows read it, their answers as responses."""

from __future__ import annotations

from typing import Optional

from django.conf import global_settings, settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django.urls import reverse

from .._flows import WebFlows, WebRequest, WebResponse, next_target, outage_response
from ..errors import LogtoException
from . import conf
from .backchannel import backchannel

__all__ = ["flows", "login_url", "outage", "response", "safe_next", "unauthenticated", "web_request"]


def flows() -> WebFlows:
    """The site's flows over the ``LOGTO`` settings (built per call: it costs nothing)."""
    return WebFlows(
        backchannel=backchannel(),
        sign_in_path=reverse("logto_rs:sign_in"),
        redirect_uri=conf.redirect_uri_setting(),
        post_sign_out_redirect_uri=conf.option("POST_SIGN_OUT_REDIRECT"),
        sign_in_options=conf.option("SIGN_IN_OPTIONS"),
        default_next=str(resolve_url(settings.LOGIN_REDIRECT_URL)),
        login_url=login_url(),
    )


def login_url() -> str:
    """Where an anonymous browser is sent to sign in: ``LOGIN_URL`` when the project set it.

    Django's default ``LOGIN_URL`` (``/accounts/login/``) means the project has no login page
    of its own: the SDK's sign-in route serves instead.
    """
    if settings.LOGIN_URL == global_settings.LOGIN_URL:
        return reverse("logto_rs:sign_in")
    return str(resolve_url(settings.LOGIN_URL))


def web_request(request: HttpRequest) -> WebRequest:
    """``request`` as the flows read it (the Django session key is the back-channel index's id)."""
    return WebRequest(
        method=request.method or "GET",
        url=request.build_absolute_uri(),
        host_url=f"{request.scheme}://{request.get_host()}",
        full_path=request.get_full_path(),
        headers=request.headers,
        query=request.GET,
        session=request.session,
        session_id=lambda: request.session.session_key,
    )


def response(answer: WebResponse) -> HttpResponse:
    """The core's answer as a Django response."""
    result = HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)
    for name, value in answer.headers.items():
        if name != "Content-Type":
            result[name] = value
    return result


def safe_next(request: HttpRequest, target: Optional[str]) -> str:
    """``target`` if it stays on this site, else ``LOGIN_REDIRECT_URL``."""
    return next_target(target, web_request(request).host_url, str(resolve_url(settings.LOGIN_REDIRECT_URL)))


def unauthenticated(request: HttpRequest, should_redirect: Optional[bool] = None) -> HttpResponse:
    """A redirect to sign in (and back) for a browser, else JSON 401 ``{"error": "Not authenticated"}``."""
    return response(flows().unauthenticated(web_request(request), should_redirect))


def outage(error: LogtoException) -> HttpResponse:
    """503 with ``Retry-After``: Logto or the session store is out of reach."""
    return response(outage_response(error))
