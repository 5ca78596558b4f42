"""Answers shared by the views, the middleware and the decorators."""

from __future__ import annotations

from typing import Optional

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from ..web import wants_redirect

__all__ = ["safe_next", "unauthenticated", "wants_html_redirect"]


def safe_next(request: HttpRequest, target: Optional[str]) -> str:
    """``target`` if it stays on this site (``url_has_allowed_host_and_scheme``), else the default."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return str(resolve_url(settings.LOGIN_REDIRECT_URL))


def wants_html_redirect(request: HttpRequest) -> bool:
    """Whether a request whose session ended gets a redirect to sign in (a browser navigating)."""
    accept_html = "HTTP_ACCEPT" in request.META and request.accepts("text/html")
    return wants_redirect(request.method or "GET", accept_html)


def sign_in_url(request: HttpRequest) -> str:
    """The sign-in view's URL, returning to the current page."""
    query = urlencode({REDIRECT_FIELD_NAME: request.get_full_path()})
    return f"{reverse('logto_rs:sign_in')}?{query}"


def unauthenticated(request: HttpRequest, should_redirect: Optional[bool] = None) -> HttpResponse:
    """A redirect to sign in (and back) for a browser, else JSON 401 ``{"error": "Not authenticated"}``."""
    if should_redirect is None:
        should_redirect = wants_html_redirect(request)
    if should_redirect:
        return HttpResponseRedirect(sign_in_url(request))
    return JsonResponse({"error": "Not authenticated"}, status=401)
