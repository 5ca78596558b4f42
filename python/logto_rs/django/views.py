"""The sign-in, callback and sign-out views (``logto_rs.django.urls``).

- ``sign-in/?next=/path`` starts a sign-in; ``next`` is kept only when it stays on the site
  (else ``LOGIN_REDIRECT_URL``); ``sign-up/`` starts one on Logto's sign-up screen.
- ``callback/`` completes it, logs the Django user in (with
  :class:`~logto_rs.django.backends.LogtoBackend`) and returns to ``next``. A failed callback
  renders ``LOGTO["ERROR_TEMPLATE"]`` (``logto_rs/callback_error.html``; override it in your
  templates) with 400, or 502 when the provider failed, in fixed words with the error code.
- ``sign-out/``: ``POST`` (same-origin and CSRF-protected) revokes the refresh token, ends the Django session
  and redirects to Logto's end-session URL; ``GET`` renders a page with the sign-out button.
- ``backchannel-logout/``: Logto's ``POST`` of a logout token (no CSRF token: the caller is
  Logto) ends the sessions it names; 200, 400 ``{"error": ...}`` for a bad token, 413 for a
  body over 64 KiB (read no further).
"""

from __future__ import annotations

import logging
from typing import Any, Optional

from django.apps import apps
from django.contrib import auth
from django.http import HttpRequest, HttpResponse
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .._flows import WebResponse, callback_error_page
from .._steps import drive_blocking
from ..backchannel import read_limited
from ..errors import LogtoException
from . import conf, get_client
from ._http import flows, response, web_request

__all__ = ["backchannel_logout", "callback", "callback_error", "sign_in", "sign_out", "sign_up"]

logger = logging.getLogger("logto_rs.django")


def _auth_backend_installed() -> bool:
    if not apps.is_installed("django.contrib.auth"):
        return False
    from .backends import LogtoBackend

    return any(isinstance(backend, LogtoBackend) for backend in auth.get_backends())


def _callback_route(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("logto_rs:callback"))


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], fallback: str, status: int
) -> HttpResponse:
    try:
        body = render_to_string(template, context, request=request)
    except TemplateDoesNotExist:
        body = fallback
    return HttpResponse(body, status=status)


def _start(
    request: HttpRequest, interaction_mode: Optional[str], first_screen: Optional[str]
) -> HttpResponse:
    # The Django user stays signed in until a callback succeeds (which logs the new user in): a
    # cross-site link to this page, or a sign-in abandoned at Logto, signs nobody out.
    steps = flows().sign_in(
        get_client(request),
        web_request(request),
        _callback_route(request),
        interaction_mode=interaction_mode,
        first_screen=first_screen,
    )
    return response(drive_blocking(steps))


@never_cache
@require_safe
def sign_in(request: HttpRequest) -> HttpResponse:
    """Start a sign-in and redirect to Logto; ``?next=`` says where to return (same-origin only)."""
    return _start(request, None, None)


@never_cache
@require_safe
def sign_up(request: HttpRequest) -> HttpResponse:
    """Start a sign-up on Logto's sign-up screen and redirect to Logto.

    ``interactionMode="signUp"``, and ``LOGTO["SIGN_UP_FIRST_SCREEN"]`` as ``firstScreen``.
    """
    return _start(request, "signUp", conf.option("SIGN_UP_FIRST_SCREEN"))


@never_cache
@require_safe
def callback(request: HttpRequest) -> HttpResponse:
    """Complete the sign-in, log the Django user in, return to where the user was going."""
    client = get_client(request)
    answer = drive_blocking(flows().callback(client, web_request(request), lambda: _log_in(request)))
    if answer.error is not None:
        return callback_error(request, answer.error)
    return response(answer)


def _log_in(request: HttpRequest) -> Optional[WebResponse]:
    """After the tokens are stored: log the Django user in (the auth backend), save the session."""
    client = get_client(request)
    prefix = conf.option("SESSION_PREFIX")
    if _auth_backend_installed():
        try:
            claims = client.getIdTokenClaims().model_dump(mode="json", exclude_none=True)
            if conf.option("FETCH_USER_INFO"):
                claims.update(client.fetchUserInfo().model_dump(mode="json", exclude_none=True))
        except LogtoException as error:
            return flows().callback_error(error)
        user = auth.authenticate(request, logto_claims=claims)
        if user is None:
            client.clearAllTokens()
            logger.warning("a Logto user was refused a Django login (inactive, or not created)")
            page = _render(
                request,
                conf.option("ERROR_TEMPLATE"),
                {
                    "error": None,
                    "code": "user.refused",
                    "message": "This account may not sign in here.",
                    "sign_in_url": reverse("logto_rs:sign_in"),
                },
                "<!doctype html><title>Sign-in refused</title><h1>This account may not sign in here.</h1>",
                403,
            )
            return WebResponse.html(page.content.decode("utf-8"), 403)
        _login_keeping_tokens(request, user, prefix)
    if not request.session.session_key:
        request.session.save()
    return None


def _login_keeping_tokens(request: HttpRequest, user: Any, prefix: str) -> None:
    """``auth.login``, which flushes the session when another user was logged in, keeping Logto's values."""
    session = request.session
    kept = {key: value for key, value in session.items() if key.startswith(prefix)}
    auth.login(request, user)
    for key, value in kept.items():
        if key not in session:
            session[key] = value


def callback_error(request: HttpRequest, error: LogtoException) -> HttpResponse:
    """The page of a failed callback: 400 (forged state, replay, ``access_denied``) or 502.

    Renders ``LOGTO["ERROR_TEMPLATE"]`` with ``error``, ``code``, ``message`` and
    ``sign_in_url``. ``message`` is fixed words: the provider's ``error_description`` and the
    query's text are never shown; ``code`` is the SDK's error code.
    """
    status, message, code = callback_error_page(error)
    fallback = flows().callback_error(error).body
    context = {"error": error, "code": code, "message": message, "sign_in_url": reverse("logto_rs:sign_in")}
    return _render(request, conf.option("ERROR_TEMPLATE"), context, fallback, status)


@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    """``POST`` (same-origin, CSRF-protected): revoke, end the session, redirect to Logto's end-session URL.

    ``GET``: the page with the sign-out button (``LOGTO["SIGN_OUT_TEMPLATE"]``).
    """
    if request.method != "POST":
        return _render(
            request,
            conf.option("SIGN_OUT_TEMPLATE"),
            {"sign_out_url": reverse("logto_rs:sign_out")},
            "<!doctype html><title>Sign out</title><p>Sign out from the page's own form.</p>",
            200,
        )
    steps = flows().sign_out(get_client(request), web_request(request), lambda: _end_session(request))
    return response(drive_blocking(steps))


def _end_session(request: HttpRequest) -> None:
    if apps.is_installed("django.contrib.auth"):
        auth.logout(request)
    else:
        request.session.flush()


@csrf_exempt
@require_POST
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """Logto's back-channel logout: the ``logout_token`` ends the sessions it names."""
    body = read_limited(request.read, request.META.get("CONTENT_LENGTH") or None)
    return response(drive_blocking(flows().backchannel_logout(get_client(request), body)))
