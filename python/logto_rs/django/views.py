"""The sign-in, callback and sign-out views (``logto_rs.django.urls``).

- ``sign-in/?next=/path`` starts a sign-in; ``next`` is kept only when
  ``url_has_allowed_host_and_scheme`` accepts it (else ``LOGIN_REDIRECT_URL``).
- ``callback/`` completes it, logs the Django user in (with
  :class:`~logto_rs.django.backends.LogtoBackend`) and returns to ``next``. A failed callback
  renders ``LOGTO["ERROR_TEMPLATE"]`` (``logto_rs/callback_error.html``; override it in your
  templates) with 400, or 502 when the provider failed.
- ``sign-out/``: ``POST`` (CSRF-protected) revokes the refresh token, ends the Django session
  and redirects to Logto's end-session URL; ``GET`` renders a page with the sign-out button.
- ``backchannel-logout/``: Logto's ``POST`` of a logout token (no CSRF token: the caller is
  Logto) ends the sessions it names; 200, 400 ``{"error": ...}`` for a bad token, 413 for a
  body over 64 KiB (read no further).
"""

from __future__ import annotations

import logging
from typing import Any

from django.apps import apps
from django.contrib import auth
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import TemplateDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from ..backchannel import read_limited
from ..errors import LogtoCallbackError, LogtoException
from . import conf, get_client
from ._http import safe_next
from .backchannel import backchannel

__all__ = ["backchannel_logout", "callback", "callback_error", "sign_in", "sign_out"]

logger = logging.getLogger("logto_rs.django")

NEXT_KEY = "next"
"""Session key (after ``LOGTO["SESSION_PREFIX"]``) of where the user goes after signing in."""


def _auth_backend_installed() -> bool:
    if not apps.is_installed("django.contrib.auth"):
        return False
    from .backends import LogtoBackend

    return any(isinstance(backend, LogtoBackend) for backend in auth.get_backends())


def _callback_url(request: HttpRequest) -> str:
    return conf.redirect_uri_setting() or request.build_absolute_uri(reverse("logto_rs:callback"))


def _render(
    request: HttpRequest, template: str, context: dict[str, Any], fallback: str, status: int
) -> HttpResponse:
    try:
        body = render_to_string(template, context, request=request)
    except TemplateDoesNotExist:
        body = fallback
    return HttpResponse(body, status=status)


@never_cache
@require_safe
def sign_in(request: HttpRequest) -> HttpResponse:
    """Start a sign-in and redirect to Logto; ``?next=`` says where to return."""
    target = safe_next(request, request.GET.get(auth.REDIRECT_FIELD_NAME))
    # The Django user stays signed in until a callback succeeds (which logs the new user in): a
    # cross-site link to this page, or a sign-in abandoned at Logto, signs nobody out.
    url = get_client(request).signIn(_callback_url(request), **conf.option("SIGN_IN_OPTIONS"))
    request.session[conf.option("SESSION_PREFIX") + NEXT_KEY] = target
    return HttpResponseRedirect(url)


@never_cache
@require_safe
def callback(request: HttpRequest) -> HttpResponse:
    """Complete the sign-in, log the Django user in, return to where the user was going."""
    client = get_client(request)
    try:
        client.handleSignInCallback(request.build_absolute_uri())
    except LogtoException as error:
        return callback_error(request, error)
    prefix = conf.option("SESSION_PREFIX")
    target = safe_next(request, request.session.pop(prefix + NEXT_KEY, None))
    if _auth_backend_installed():
        try:
            claims = client.getIdTokenClaims().model_dump(mode="json", exclude_none=True)
            if conf.option("FETCH_USER_INFO"):
                claims.update(client.fetchUserInfo().model_dump(mode="json", exclude_none=True))
        except LogtoException as error:
            return callback_error(request, error)
        user = auth.authenticate(request, logto_claims=claims)
        if user is None:
            client.clearAllTokens()
            logger.warning("a Logto user was refused a Django login (inactive, or not created)")
            return _render(
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
        _login_keeping_tokens(request, user, prefix)
    if not request.session.session_key:
        request.session.save()
    backchannel().signed_in(request.session, client.getIdToken(), request.session.session_key)
    return HttpResponseRedirect(target)


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
    ``sign_in_url``. The page never shows a token.
    """
    status = 400 if isinstance(error, LogtoCallbackError) else 502
    logger.warning("sign-in callback failed: %s (%s)", error.code, error)
    sign_in_url = reverse("logto_rs:sign_in")
    context = {"error": error, "code": error.code, "message": str(error), "sign_in_url": sign_in_url}
    fallback = (
        "<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1>"
        f"<p>{escape(str(error))}</p><p><code>{escape(error.code)}</code></p>"
        f'<p><a href="{escape(sign_in_url)}">Try again</a></p>'
    )
    return _render(request, conf.option("ERROR_TEMPLATE"), context, fallback, status)


@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def sign_out(request: HttpRequest) -> HttpResponse:
    """``POST``: revoke, end the session, redirect to Logto's end-session URL. ``GET``: the button."""
    if request.method != "POST":
        return _render(
            request,
            conf.option("SIGN_OUT_TEMPLATE"),
            {"sign_out_url": reverse("logto_rs:sign_out")},
            "<!doctype html><title>Sign out</title><p>Sign out from the page's own form.</p>",
            200,
        )
    target = conf.option("POST_SIGN_OUT_REDIRECT")
    if not target.startswith(("http://", "https://")):
        target = request.build_absolute_uri(target)
    client = get_client(request)
    id_token = client.getIdToken()
    url = client.signOut(target)
    backchannel().signed_out(request.session, id_token, request.session.session_key)
    if apps.is_installed("django.contrib.auth"):
        auth.logout(request)
    else:
        request.session.flush()
    return HttpResponseRedirect(url)


@csrf_exempt
@require_POST
def backchannel_logout(request: HttpRequest) -> HttpResponse:
    """Logto's back-channel logout: the ``logout_token`` ends the sessions it names."""
    body = read_limited(request.read, request.META.get("CONTENT_LENGTH") or None)
    answer = backchannel().respond_to_body(body)
    if answer.status != 200:
        logger.warning("refused a back-channel logout: %s", answer.body.get("error_description", ""))
    response = HttpResponse(answer.json(), status=answer.status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
