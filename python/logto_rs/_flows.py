"""The browser flows of the web integrations, written once for Flask, FastAPI and Django.

A framework adapter hands :class:`WebFlows` a :class:`WebRequest` (method, URLs, headers,
query, the framework's session) and turns the :class:`WebResponse` it gets back into its own
response type. Each flow is one generator over :mod:`logto_rs._steps`: it yields the client's
calls, so the same code runs with a :class:`~logto_rs.BlockingLogtoClient` in Flask and Django
(:func:`~logto_rs._steps.drive_blocking`) and with an awaitable
:class:`~logto_rs.LogtoClient` in FastAPI (:func:`~logto_rs._steps.drive_async`).

The decisions live here once:

- sign-in: ``next`` is kept only when it stays on the site, and travels as the sign-in's
  ``postRedirectUri`` (``handleSignInCallback`` returns it); ``/sign-up`` starts the same flow
  with ``interactionMode="signUp"``;
- the callback: the URL the provider redirected to is rebuilt from ``redirect_uri`` behind a
  proxy; the session is recorded for back-channel logout; a failure answers a page in fixed
  words with the error code only, 400 for a bad or forged callback, 502 for a failing provider;
- sign-out: a same-origin ``POST`` only; it revokes, forgets the session and drops it from the
  back-channel index;
- an anonymous request: a redirect to sign in for a browser navigating, 401 otherwise;
- an outage (the provider unreachable or failing, the session store out of reach): 503 with
  ``Retry-After``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from html import escape
from typing import Any, Callable, Optional, Union
from urllib.parse import urlencode, urlsplit

from . import _driver
from ._steps import Steps
from .backchannel import BackchannelLogout, BackchannelResponse, SessionIndex, _too_large, parse_form
from .client import BlockingLogtoClient, LogtoClient
from .errors import (
    LogtoCallbackError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoNetworkError,
    LogtoNotAuthenticatedError,
    LogtoResponseError,
    LogtoStorageError,
)
from .web import is_refusal, is_same_origin, safe_next, wants_redirect

__all__ = [
    "ANSWERED",
    "OUTAGE",
    "RETRY_AFTER",
    "SESSION_ENDED",
    "AnyClient",
    "WebFlows",
    "WebRequest",
    "WebResponse",
    "callback_error_page",
    "is_outage",
    "next_target",
    "outage_response",
]

logger = logging.getLogger("logto_rs.web")

AnyClient = Union[LogtoClient, BlockingLogtoClient]
"""A client bound to the request's session: awaitable (FastAPI) or blocking (Flask, Django)."""

RETRY_AFTER = "5"
"""Seconds an outage answer asks the caller to wait (``Retry-After``)."""

OUTAGE = (LogtoNetworkError, LogtoResponseError)
"""The provider errors that mean an outage (Logto out of reach, or answering garbage)."""

SESSION_ENDED = (LogtoInvalidGrantError, LogtoNotAuthenticatedError)
"""The errors that mean the session ended (answered as an anonymous request)."""

ANSWERED = (LogtoStorageError, *OUTAGE, *SESSION_ENDED)
"""The errors a framework hands to :meth:`WebFlows.error_answer` (its error handlers' classes)."""

NOT_AUTHENTICATED = "Not authenticated"

_CODE = re.compile(r"[a-z0-9_.]{1,64}")


@dataclass(frozen=True)
class WebRequest:
    """What a flow reads of a request; the framework adapter builds it.

    Attributes:
        method: The HTTP method.
        url: The full URL as received (scheme, host, path and query).
        host_url: ``scheme://host[:port]`` of the site.
        full_path: The path and query, where an anonymous user returns after signing in.
        headers: The request headers: the framework's own, read with a case-insensitive ``get``.
        query: The query parameters (first value of each).
        session: The framework's session (Flask ``session``, Starlette's or Django's
            ``request.session``).
        session_id: The server-side session's id when there is one (the back-channel index
            records it), read when needed: a callback rotates it.

    """

    method: str
    url: str
    host_url: str
    full_path: str
    headers: Any
    query: Mapping[str, str]
    session: MutableMapping[str, Any]
    session_id: Callable[[], Optional[str]] = lambda: None

    def same_origin(self) -> bool:
        """Whether the request comes from a page of the site (see :func:`logto_rs.web.is_same_origin`)."""
        headers = self.headers
        return is_same_origin(
            host_url=self.host_url,
            sec_fetch_site=headers.get("Sec-Fetch-Site"),
            origin=headers.get("Origin"),
            referer=headers.get("Referer"),
        )

    def accepts_html(self) -> bool:
        """Whether the request's ``Accept`` names HTML (a browser navigating)."""
        accept = self.headers.get("Accept") or ""
        return "text/html" in accept or "application/xhtml+xml" in accept


@dataclass(frozen=True)
class WebResponse:
    """A flow's answer, which each framework turns into its own response.

    Attributes:
        status: The HTTP status.
        body: The body text (HTML, JSON or plain text, per ``Content-Type``).
        headers: The headers (``Location`` of a redirect, ``Retry-After``, ``Content-Type``).
        detail: A short human message, for frameworks whose errors are ``{"detail": ...}``.
        error: The failure a callback error page answers, for adapters rendering their own page.

    """

    status: int
    body: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    detail: Optional[str] = None
    error: Optional[LogtoException] = None

    @property
    def location(self) -> Optional[str]:
        """A redirect's target."""
        return self.headers.get("Location")

    @property
    def content_type(self) -> str:
        """The body's media type."""
        return self.headers.get("Content-Type", "text/plain; charset=utf-8")

    @classmethod
    def redirect(cls, url: str, status: int = 302) -> WebResponse:
        """A redirect to ``url``."""
        return cls(status, headers={"Location": url})

    @classmethod
    def html(cls, body: str, status: int = 200, **extra: Any) -> WebResponse:
        """An HTML page."""
        return cls(status, body, {"Content-Type": "text/html; charset=utf-8"}, **extra)

    @classmethod
    def text(cls, body: str, status: int = 200) -> WebResponse:
        """A plain-text answer."""
        return cls(status, body, {"Content-Type": "text/plain; charset=utf-8"}, detail=body)

    @classmethod
    def json(
        cls,
        data: Mapping[str, Any],
        status: int = 200,
        headers: Optional[Mapping[str, str]] = None,
        **extra: Any,
    ) -> WebResponse:
        """A JSON answer."""
        return cls(status, json.dumps(data), {"Content-Type": "application/json", **(headers or {})}, **extra)

    @classmethod
    def of_backchannel(cls, answer: BackchannelResponse) -> WebResponse:
        """The back-channel endpoint's answer (its JSON body, ``Cache-Control: no-store``)."""
        return cls(answer.status, answer.json(), answer.headers, detail=answer.body.get("error"))


def next_target(target: Optional[str], host_url: str, default: str = "/") -> str:
    """Where a sign-in returns: ``target`` when it stays on the site at ``host_url``, else ``default``.

    A path of the site is kept, and so is an absolute URL of the site's own origin; any other
    origin, a scheme-relative URL or a control character is dropped (no open redirect).
    """
    if not target:
        return default
    origin = host_url.rstrip("/")
    path = target[len(origin) :] or "/" if target == origin or target.startswith(origin + "/") else target
    return target if safe_next(path) == path else default


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is an outage (answered 503), not a bug or a bad request.

    The provider out of reach or answering garbage, or the session store failing; the SDK's own
    refusals (a strict cookie storage's ``storage.cookie_too_large``) are not outages.
    """
    if isinstance(error, LogtoStorageError):
        return not is_refusal(error)
    return isinstance(error, OUTAGE)


def outage_response(error: LogtoException) -> WebResponse:
    """503 with ``Retry-After``: the provider or the session store is out of reach.

    The body is ``{"error": "temporarily_unavailable", "error_description"}``; the description
    names the error code only (no provider text).
    """
    what = "session store" if isinstance(error, LogtoStorageError) else "identity provider"
    description = f"the {what} is unavailable ({error.code})"
    logger.warning("answered 503: the %s failed (%s)", what, error.code)
    return WebResponse.json(
        {"error": "temporarily_unavailable", "error_description": description},
        503,
        {"Retry-After": RETRY_AFTER},
        detail=f"The {what} is unavailable",
    )


def callback_error_page(error: LogtoException) -> tuple[int, str, str]:
    """``(status, message, code)`` of a failed callback's page.

    400 for a bad, forged or refused callback, 502 for a failing provider. The message is fixed
    words: the provider's ``error_description`` and the query's text are attacker-controlled and
    never shown; the code is the SDK's error code (never free text).
    """
    if isinstance(error, LogtoCallbackError):
        status, message = 400, "The sign-in was cancelled, has expired, or did not start here."
    else:
        status, message = 502, "Logto could not complete the sign-in. Try again later."
    code = error.code if error.code and _CODE.fullmatch(error.code) else "error"
    return status, message, code


def _id_token(client: AnyClient) -> Any:
    """The stored ID token: a value from a blocking client, an awaitable from an awaitable one."""
    return client.getIdTokenAsync() if isinstance(client, LogtoClient) else client.getIdToken()


def _claims(client: AnyClient) -> Any:
    """The ID token's claims: a value from a blocking client, an awaitable from an awaitable one."""
    return client.getIdTokenClaimsAsync() if isinstance(client, LogtoClient) else client.getIdTokenClaims()


class WebFlows:
    """The sign-in, sign-up, callback and sign-out flows of one site, and its standard answers.

    Args:
        backchannel: The back-channel logout handler, or ``None`` when the site serves none.
        sign_in_path: The sign-in route (an anonymous user is sent there, the error page links it).
        redirect_uri: The configured callback URL (behind a proxy); ``None``: the route's URL.
        post_sign_out_redirect_uri: Where Logto sends the user after signing out (a URL, or a
            path of the site).
        sign_in_options: Extra keyword arguments of ``signIn``.
        default_next: Where a sign-in returns without a usable ``next``.
        login_url: Where an anonymous user is sent to sign in (with ``next``), when it is not
            ``sign_in_path`` (Django's ``LOGIN_URL``): a path, or a URL of another site.

    """

    def __init__(
        self,
        *,
        backchannel: Optional[BackchannelLogout],
        sign_in_path: str,
        redirect_uri: Optional[str] = None,
        post_sign_out_redirect_uri: str = "/",
        sign_in_options: Optional[Mapping[str, Any]] = None,
        default_next: str = "/",
        login_url: Optional[str] = None,
    ) -> None:
        self.backchannel = backchannel
        self.sign_in_path = sign_in_path
        self.redirect_uri = redirect_uri
        self.post_sign_out_redirect_uri = post_sign_out_redirect_uri
        self.sign_in_options = dict(sign_in_options or {})
        self.default_next = default_next
        self.login_url = login_url or sign_in_path

    @property
    def keeps_records(self) -> bool:
        """Whether ended sessions are recognised by records (cookie sessions): every request is checked.

        An index that deletes the sessions it ends (Redis, Django's server-side sessions with
        their records) is checked the same way only when it keeps records too.
        """
        backchannel = self.backchannel
        return backchannel is not None and type(backchannel.sessions).is_ended is not SessionIndex.is_ended

    # -- URLs -------------------------------------------------------------------------------

    def callback_url(self, route_url: str) -> str:
        """The redirect URI sent to Logto: the configured ``redirect_uri``, else the route's URL."""
        return self.redirect_uri or route_url

    def received_callback_url(self, request: WebRequest) -> str:
        """The URL the provider redirected to, rebuilt on ``redirect_uri`` behind a proxy."""
        if self.redirect_uri is None:
            return request.url
        query = urlsplit(request.url).query
        return f"{self.redirect_uri}?{query}" if query else self.redirect_uri

    def post_sign_out_url(self, request: WebRequest) -> str:
        """Where Logto sends the user after signing out (a path is made absolute on the site)."""
        target = self.post_sign_out_redirect_uri
        if target.startswith(("http://", "https://")):
            return target
        return request.host_url.rstrip("/") + target

    def sign_in_url(self, request: WebRequest) -> str:
        """The login URL with ``next`` returning to the current request's path and query.

        ``next`` is the full URL when the login URL is on another site; a login URL carrying a
        query keeps it.
        """
        login = self.login_url
        parts = urlsplit(login)
        site = request.host_url.rstrip("/")
        back = request.full_path
        if parts.netloc and f"{parts.scheme}://{parts.netloc}" != site:
            back = site + back
        return login + ("&" if parts.query else "?") + urlencode({"next": back})

    # -- flows ------------------------------------------------------------------------------

    def sign_in(
        self,
        client: AnyClient,
        request: WebRequest,
        route_url: str,
        *,
        interaction_mode: Optional[str] = None,
        first_screen: Optional[str] = None,
    ) -> Steps[WebResponse]:
        """``GET sign-in`` (or ``sign-up``): start a sign-in and redirect to Logto.

        ``?next=`` is kept when it stays on the site and comes back from the callback as the
        sign-in's ``postRedirectUri``. The user stays signed in until a callback succeeds.
        """
        options = dict(self.sign_in_options)
        if interaction_mode is not None:
            options["interactionMode"] = interaction_mode
        if first_screen is not None:
            options["firstScreen"] = first_screen
        target = next_target(request.query.get("next"), request.host_url, self.default_next)
        url = yield client.signIn(self.callback_url(route_url), postRedirectUri=target, **options)
        return WebResponse.redirect(url)

    def callback(
        self,
        client: AnyClient,
        request: WebRequest,
        signed_in: Optional[Callable[[], Optional[WebResponse]]] = None,
    ) -> Steps[WebResponse]:
        """``GET callback``: complete the sign-in, record the session, return where it was going.

        ``signed_in`` runs after the tokens are stored (Django logs its user in there); an
        answer of its own ends the flow.
        """
        try:
            target = yield client.handleSignInCallback(self.received_callback_url(request))
        except LogtoException as error:
            logger.warning("sign-in callback failed: %s", callback_error_page(error)[2])
            return self.callback_error(error)
        if signed_in is not None:
            refused = signed_in()
            if refused is not None:
                return refused
        if self.backchannel is not None:
            id_token = yield _id_token(client)
            yield from self.backchannel._signed_in(request.session, id_token, request.session_id())
        return WebResponse.redirect(next_target(target, request.host_url, self.default_next))

    def sign_out(
        self, client: AnyClient, request: WebRequest, forget: Callable[[], Any]
    ) -> Steps[WebResponse]:
        """``POST sign-out``: revoke, forget the session, redirect to Logto's end-session URL.

        Only a same-origin ``POST`` signs out (``Sec-Fetch-Site``, else ``Origin``, else
        ``Referer``; a request with none of them is refused 403), so a link, an image or a form
        on another site cannot sign the user out. ``forget`` drops the framework's session
        (its server-side id, or the whole session); it runs after the back-channel index has
        dropped the session.
        """
        if request.method != "POST":
            return self.sign_out_page(request)
        if not request.same_origin():
            logger.warning("refused a cross-site sign-out request")
            return WebResponse.text("Cross-site sign-out refused.", 403)
        id_token = yield _id_token(client)
        url = yield client.signOut(self.post_sign_out_url(request))
        if self.backchannel is not None:
            yield from self.backchannel._signed_out(request.session, id_token, request.session_id())
        forget()
        return WebResponse.redirect(url, 303)

    def backchannel_logout(self, client: AnyClient, body: Optional[bytes]) -> Steps[WebResponse]:
        """``POST backchannel-logout``: Logto's logout token ends the sessions it names.

        No CSRF token (the caller is Logto, not a browser; the signed token is the proof): 200
        when done, 400 ``{"error": ...}`` for a bad token, 413 for a body over 64 KiB (read no
        further), 503 when the keys or the stores are out of reach; always
        ``Cache-Control: no-store``. ``body`` is the form-encoded body, ``None`` when it was
        longer than the limit. ``client`` says how to wait: blocking, or awaited.
        """
        if self.backchannel is None:
            return WebResponse.json({"error": "not_found"}, 404)
        run = _driver.run if isinstance(client, LogtoClient) else _driver.run_blocking
        if body is None:
            answer = _too_large()
        else:
            answer = yield from self.backchannel._respond(parse_form(body), run)
        if answer.status != 200:
            logger.warning("refused a back-channel logout: %s", answer.body.get("error_description", ""))
        return WebResponse.of_backchannel(answer)

    def drop_ended_session(self, client: AnyClient, request: WebRequest) -> Steps[bool]:
        """The revoked-cookie check: clear a session that a back-channel logout or a sign-out ended.

        A cookie cannot be deleted, and a server-side session may have been saved again by a
        request in flight: both are recognised by the records of ended sessions, and their tokens
        cleared before the request is served. ``True`` when the session was ended.

        Raises:
            LogtoStorageError: the records are out of reach (an outage: answer 503).

        """
        backchannel = self.backchannel
        if backchannel is None or not self.keeps_records:
            return False
        id_token = yield _id_token(client)
        if not (yield from backchannel._is_ended(request.session, id_token)):
            return False
        yield client.clearAllTokens()
        return True

    def user(self, client: AnyClient, fetch_user_info: bool = False) -> Steps[Any]:
        """The signed-in user of a protected view: its ID token claims (or userinfo), else ``None``.

        An expired ID token is renewed first; a session that cannot be renewed (or whose grant
        Logto revoked) is anonymous. An outage propagates (answer it with :func:`outage_response`).
        """
        try:
            if not (yield client._signed_in()):
                return None
            return (yield client.fetchUserInfo() if fetch_user_info else _claims(client))
        except SESSION_ENDED:
            return None

    # -- standard answers -------------------------------------------------------------------

    def sign_out_page(self, request: WebRequest) -> WebResponse:
        """The page ``GET sign-out`` answers: a form that posts the sign-out."""
        action = escape(urlsplit(request.url).path)
        return WebResponse.html(
            "<!doctype html><title>Sign out</title>"
            f'<form method="post" action="{action}"><button type="submit">Sign out</button></form>'
        )

    def callback_error(self, error: LogtoException) -> WebResponse:
        """The page of a failed callback (see :func:`callback_error_page`)."""
        status, message, code = callback_error_page(error)
        return WebResponse.html(
            "<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1>"
            f'<p>{message}</p><p><code id="logto-error-code">{code}</code></p>'
            f'<p><a href="{escape(self.sign_in_path)}">Try again</a></p>',
            status,
            detail=message,
            error=error,
        )

    def error_answer(
        self, request: WebRequest, error: BaseException, should_redirect: Optional[bool] = None
    ) -> Optional[WebResponse]:
        """The answer to an error a view raised; ``None`` when it is not the SDK's to answer.

        An outage (:func:`is_outage`) is 503 with ``Retry-After``; an ended session (Logto
        revoked the grant, nobody is signed in) is :meth:`unauthenticated`, never a 500.
        Anything else, the SDK's own refusals included, propagates.
        """
        if isinstance(error, LogtoException) and is_outage(error):
            return outage_response(error)
        if isinstance(error, SESSION_ENDED):
            logger.info("session ended in a view: %s", error.code)
            return self.unauthenticated(request, should_redirect)
        return None

    def unauthenticated(self, request: WebRequest, should_redirect: Optional[bool] = None) -> WebResponse:
        """The answer to a request that needs a signed-in user.

        A browser navigating (``GET`` accepting HTML) is redirected to sign in and back; anyone
        else gets 401 ``{"error": "Not authenticated"}``. ``should_redirect`` decides for every
        request when given.
        """
        if should_redirect is None:
            should_redirect = wants_redirect(request.method, request.accepts_html())
        if should_redirect:
            return WebResponse.redirect(self.sign_in_url(request))
        return WebResponse.json({"error": NOT_AUTHENTICATED}, 401, detail=NOT_AUTHENTICATED)
