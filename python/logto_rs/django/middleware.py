"""``LogtoMiddleware``: the request's client and claims, and ended sessions answered, never 500.

Add ``"logto_rs.django.middleware.LogtoMiddleware"`` after ``SessionMiddleware`` (and after
``AuthenticationMiddleware`` when you use it). For each request it sets

- ``request.logto``: the request's :class:`~logto_rs.LogtoContext` (``is_authenticated``,
  ``claims``), computed on first use (:func:`~logto_rs.django.get_context`; the client bound to
  the request's session is :func:`~logto_rs.django.get_client`);
- ``request.logto_claims``: the signed-in user's ID token claims (``IdTokenClaims``), or ``None``.

A :class:`~logto_rs.LogtoInvalidGrantError` (Logto revoked the grant) or
:class:`~logto_rs.LogtoNotAuthenticatedError` raised by a view becomes a redirect to sign in
for a browser navigating, else JSON 401; the Django login ends with the Logto session.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from django.apps import apps
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from .._flows import OUTAGE, SESSION_ENDED
from .._sessions import LogtoInsecureCookieWarning, check_cookie_security
from .._steps import drive_blocking
from ..errors import (
    LogtoStorageError,
)
from . import get_client, get_context
from ._http import flows, outage, response, web_request

__all__ = [
    "LogtoInsecureCookieWarning",
    "LogtoMiddleware",
    "check_session_store",
    "claims_of",
    "end_session",
    "storage_unavailable",
]

logger = logging.getLogger("logto_rs.django")


def claims_of(request: HttpRequest) -> Any:
    """The ID token claims of the request's Logto session, or ``None``.

    An expired ID token is renewed first (a refresh, its new ID token verified); a session whose
    ID token cannot be renewed is ended, with its Django login.
    """
    if settings.SESSION_COOKIE_NAME not in request.COOKIES and not getattr(request, "_logto_client", None):
        return None  # no session: nothing to read
    client = get_client(request)
    if client.getIdToken() is None:
        return None
    try:
        claims = drive_blocking(flows().user(client))
    except OUTAGE:
        return None  # Logto out of reach: not signed in for this request, signed out of nothing
    if claims is None:
        end_session(request)
    return claims


def end_session(request: HttpRequest) -> None:
    """End the request's Logto session and its Django login (or the whole Django session)."""
    if apps.is_installed("django.contrib.auth"):
        from django.contrib.auth import logout

        logout(request)
    else:
        request.session.flush()


def check_session_store(request: HttpRequest) -> None:
    """Raise when the session the cookie names could not be read because its store is out of reach.

    Django's cache session backends read a failing cache as a missing session, which would
    sign the user out and delete the cookie. A cookie whose session did not load is looked up
    once more with ``exists``, which lets the store's error through; the cookie is then kept.

    Raises:
        LogtoStorageError: the session store failed (``storage.error``; an outage: answer 503).

    """
    session = request.session
    cookie = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not cookie or session.keys() or session.session_key is not None:
        return  # loading the session keeps its key unless the store had none (or failed)
    try:
        session.exists(cookie)
    except Exception as error:
        # The session as the cookie names it, not loaded: Django keeps the cookie it would
        # otherwise delete as the cookie of an empty session.
        request.session = type(session)(cookie)
        raise LogtoStorageError("the session store failed (exists)", "storage.error") from error


def storage_unavailable(error: LogtoStorageError) -> HttpResponse:
    """503 with ``Retry-After``: the session store (or the records of ended sessions) is out of reach."""
    return outage(error)


class LogtoMiddleware:
    """Sets ``request.logto`` (the lazy context) and ``request.logto_claims``; answers ended sessions."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._cookie_checked = False

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Bind the request's client and claims, then run the view."""
        self._check_cookie_security(request)
        if settings.SESSION_COOKIE_NAME in request.COOKIES:
            try:
                check_session_store(request)
                self._end_revoked_session(request)
            except LogtoStorageError as error:
                return storage_unavailable(error)
        request.logto = SimpleLazyObject(lambda: get_context(request))
        request.logto_claims = claims_of(request)
        return self.get_response(request)

    @staticmethod
    def _end_revoked_session(request: HttpRequest) -> None:
        """A session that a back-channel logout or a sign-out ended is ended before the view.

        Signed cookies cannot be deleted, and a server-side session may have been saved again
        by a request in flight when it was deleted: both are recognised by their records.
        """
        if drive_blocking(flows().drop_ended_session(get_client(request), web_request(request))):
            end_session(request)

    def _check_cookie_security(self, request: HttpRequest) -> None:
        if self._cookie_checked:
            return
        self._cookie_checked = True
        check_cookie_security(
            request.get_host(),
            bool(settings.SESSION_COOKIE_SECURE),
            "Django: SESSION_COOKIE_SECURE = True",
            logger,
        )

    def process_exception(self, request: HttpRequest, exception: Exception) -> Optional[HttpResponse]:
        """Answer a view whose Logto session ended (a redirect to sign in, or JSON 401).

        An outage (Logto or the session store out of reach) is answered 503 with
        ``Retry-After``, never 500.
        """
        answer = flows().error_answer(web_request(request), exception)
        if answer is None:
            return None
        # DRF may have replaced request.user (None with UNAUTHENTICATED_USER = None).
        user = getattr(request, "user", None)
        ended = isinstance(exception, SESSION_ENDED)
        if ended and apps.is_installed("django.contrib.auth") and getattr(user, "is_authenticated", False):
            from django.contrib.auth import logout

            logout(request)
        return response(answer)
