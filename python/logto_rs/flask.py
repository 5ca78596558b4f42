"""Flask integration: session storages, the ``LogtoFlask`` extension and ``@authenticated``.

One :class:`LogtoFlask` per app holds one :class:`~logto_rs.LogtoClient` whose storage reads the
current request's session, so one client (one connection pool, one discovery and JWKS cache)
serves every user. logto-rs calls the storage in the request's own thread and context.

- :class:`FlaskSessionStorage` keeps the tokens in Flask's signed cookie session. It warns when
  the cookie would pass the 4 KB a browser keeps, which would silently sign the user out.
- :class:`RedisSessionStorage` / :class:`AsyncRedisSessionStorage` keep the tokens in Redis. The
  cookie then holds only a random session id; every key is namespaced by it and expires.
- :func:`require_access_token` protects an API view: it verifies the request's bearer token
  (``AccessTokenVerifier``) and answers 401/403 with RFC 6750 challenges.

Install with ``pip install logto-rs[flask]``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, cast

from flask import Flask, current_app, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from markupsafe import escape
from werkzeug.wrappers import Response

from ._flask_guard import (
    PROVIDER_OUTAGE,
    access_token_error_response,
    bearer_token,
    provider_unavailable_response,
    require_access_token,
)
from .backchannel import (
    BackchannelLogout,
    MemoryRevocations,
    RedisReplayStore,
    RedisSessionIndex,
    ReplayStore,
    SessionIndex,
    read_limited,
)
from .client import LogtoClient
from .config import LogtoConfig
from .errors import (
    LogtoCallbackError,
    LogtoConfigError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoNotAuthenticatedError,
    LogtoStorageError,
)
from .redis_storage import AsyncRedisStorage, RedisStorage
from .storage import Storage
from .web import COOKIE_LIMIT, insecure_cookie_message, is_refusal, is_same_origin, safe_next, wants_redirect

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = [
    "AsyncRedisSessionStorage",
    "FlaskSessionStorage",
    "FlaskSessionId",
    "LogtoFlask",
    "LogtoInsecureCookieWarning",
    "LogtoSessionTooLargeWarning",
    "RedisSessionStorage",
    "access_token_error_response",
    "authenticated",
    "bearer_token",
    "require_access_token",
]

logger = logging.getLogger("logto_rs.flask")

EXTENSION_KEY = "logto_rs"
"""Where the extension is registered in ``app.extensions``."""

NEXT_KEY = "logto_next"
"""Session key of the path the user was going to before signing in."""

View = TypeVar("View", bound=Callable[..., Any])


class LogtoInsecureCookieWarning(UserWarning):
    """The session cookie is not ``Secure`` on a host other than loopback."""


class LogtoSessionTooLargeWarning(UserWarning):
    """The session cookie grew past what a browser keeps; the user would be signed out."""


class FlaskSessionStorage(Storage):
    """Tokens in Flask's signed cookie session (``flask.session``), under ``prefix`` + key.

    Logto's tokens easily pass the 4 KB a browser keeps in one cookie (an ID token, a refresh
    token and a few access tokens). Past that the browser drops the cookie and the user is
    signed out without a word, so every write measures the cookie. When it gets too large, the
    storage warns (``LogtoSessionTooLargeWarning`` and the ``logto_rs.flask`` logger), or raises
    with ``strict=True``. Use :class:`RedisSessionStorage` instead for many tokens.

    The cookie is signed, not encrypted: anyone holding it can read the tokens in it.
    """

    def __init__(self, prefix: str = "logto_", *, max_cookie_bytes: int = COOKIE_LIMIT, strict: bool = False):
        self.prefix = prefix
        self.max_cookie_bytes = max_cookie_bytes
        self.strict = strict

    def get(self, key: str) -> Optional[str]:
        """Return the value under ``key`` in the current session, or ``None``."""
        value = session.get(self.prefix + key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: Optional[str]) -> None:
        """Store ``value`` under ``key`` in the current session (``None`` deletes it)."""
        if value is None:
            self.delete(key)
            return
        session[self.prefix + key] = value
        self._check_size()

    def delete(self, key: str) -> None:
        """Remove ``key`` from the current session."""
        session.pop(self.prefix + key, None)

    def cookie_size(self) -> Optional[int]:
        """Return the size in bytes the session cookie would have now, if it can be measured."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        interface = app.session_interface
        if not isinstance(interface, SecureCookieSessionInterface):
            return None
        serializer = interface.get_signing_serializer(app)
        if serializer is None:
            return None
        value = serializer.dumps(dict(session))
        name = app.config.get("SESSION_COOKIE_NAME") or "session"
        # name=value plus the attributes Flask sets (Path, HttpOnly, SameSite, Expires…).
        return len(name) + 1 + len(value) + 100

    def _check_size(self) -> None:
        size = self.cookie_size()
        if size is None or size <= self.max_cookie_bytes:
            return
        message = (
            f"the session cookie would be {size} bytes, more than the {self.max_cookie_bytes} "
            "a browser keeps: "
            "the browser would drop it and sign the user out. Keep the tokens server-side with "
            "logto_rs.flask.RedisSessionStorage instead of FlaskSessionStorage."
        )
        if self.strict:
            raise LogtoException(message, "storage.cookie_too_large")
        if not g.get("_logto_cookie_warned"):
            g._logto_cookie_warned = True
            logger.warning(message)
            warnings.warn(message, LogtoSessionTooLargeWarning, stacklevel=2)


class FlaskSessionId:
    """Keeps the Redis session id in Flask's cookie session, under ``session_key``."""

    def __init__(self, session_key: str = "logto_sid") -> None:
        self.session_key = session_key

    def get(self) -> Optional[str]:
        """The current request's session id, or ``None``."""
        sid = session.get(self.session_key)
        return sid if isinstance(sid, str) else None

    def set(self, sid: str) -> None:
        """Make ``sid`` the session id of the cookie sent back."""
        session[self.session_key] = sid

    def clear(self) -> None:
        """Forget the session id."""
        session.pop(self.session_key, None)


class RedisSessionStorage(RedisStorage):
    """Tokens in Redis (a synchronous ``redis.Redis``); Flask's cookie holds a random session id.

    Keys are ``<prefix>{<session id>}:<key>`` and expire ``ttl`` after their last write; signing
    out deletes them. Several workers and hosts can share a session: refreshes take the
    session's lock in Redis, and the session id is rotated after each callback.
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
        session_key: str = "logto_sid",
    ):
        super().__init__(client, FlaskSessionId(session_key), prefix=prefix, ttl=ttl)


class AsyncRedisSessionStorage(AsyncRedisStorage):
    """:class:`RedisSessionStorage` over ``redis.asyncio.Redis``: every method is a coroutine.

    Flask runs each ``async def`` view in an event loop of its own, while an asyncio Redis
    connection belongs to the loop that opened it: this storage therefore cannot serve
    :class:`LogtoFlask`, which refuses it. It remains for code that runs one event loop of its
    own (a worker, a script) and binds sessions through Flask's request context.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
        session_key: str = "logto_sid",
    ):
        super().__init__(client, FlaskSessionId(session_key), prefix=prefix, ttl=ttl)


def same_origin_request() -> bool:
    """Whether the current request comes from a page of this site (see :func:`web.is_same_origin`)."""
    headers = request.headers
    return is_same_origin(
        host_url=request.host_url,
        sec_fetch_site=headers.get("Sec-Fetch-Site"),
        origin=headers.get("Origin"),
        referer=headers.get("Referer"),
    )


class LogtoFlask:
    """The Flask extension: registers the sign-in, callback and sign-out routes.

    ``LogtoFlask(app, config)`` or ``LogtoFlask(config=config)`` then ``init_app(app)``. Without
    a ``config``, it reads ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``, ``LOGTO_APP_SECRET``,
    ``LOGTO_SCOPES`` and ``LOGTO_RESOURCES`` from ``app.config``. ``/sign-in?next=/path`` returns
    the user to ``/path`` after signing in (same-origin paths only). A failed callback renders
    :meth:`error_response`, which you can override.

    Args:
        app: The Flask app, or ``None`` to call :meth:`init_app` later.
        config: The Logto configuration.
        storage: Where sessions live; defaults to :class:`FlaskSessionStorage`.
        sign_in_path: Route that starts a sign-in.
        callback_path: Route the provider redirects back to (register its URL in Logto).
        sign_out_path: Route that signs out.
        post_sign_out_path: Where the provider sends the user after signing out (register it).
        redirect_uri: The full callback URL, when ``url_for`` cannot build it (proxies).
        sign_in_options: Extra keyword arguments for :meth:`LogtoClient.signIn`.
        backchannel_logout_path: Route Logto POSTs logout tokens to (register its URL as the
            app's back-channel logout URI); ``None`` serves none.
        session_index: Where back-channel logouts find sessions; defaults to a
            :class:`~logto_rs.backchannel.RedisSessionIndex` over a :class:`RedisSessionStorage`,
            else :class:`~logto_rs.backchannel.MemoryRevocations` (one process).
        replay_store: Where logout token ids are remembered; defaults to a
            :class:`~logto_rs.backchannel.RedisReplayStore` over a :class:`RedisSessionStorage`,
            else this process's memory.
    """

    def __init__(
        self,
        app: Optional[Flask] = None,
        config: Optional[LogtoConfig] = None,
        *,
        storage: Optional[Storage] = None,
        sign_in_path: str = "/sign-in",
        callback_path: str = "/callback",
        sign_out_path: str = "/sign-out",
        post_sign_out_path: str = "/",
        redirect_uri: Optional[str] = None,
        sign_in_options: Optional[dict[str, Any]] = None,
        backchannel_logout_path: Optional[str] = "/backchannel-logout",
        session_index: Optional[SessionIndex] = None,
        replay_store: Optional[ReplayStore] = None,
    ):
        self._config = config
        self.backchannel_logout_path = backchannel_logout_path
        self._session_index = session_index
        self._replay_store = replay_store
        self.backchannel: Optional[BackchannelLogout] = None
        self.storage: Storage = storage if storage is not None else FlaskSessionStorage()
        self.sign_in_path = sign_in_path
        self.callback_path = callback_path
        self.sign_out_path = sign_out_path
        self.post_sign_out_path = post_sign_out_path
        self.redirect_uri = redirect_uri
        self.sign_in_options = dict(sign_in_options or {})
        self._client: Optional[LogtoClient] = None
        self._cookie_checked = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the client for ``app``, register the routes and the error handlers.

        Also sets ``SESSION_COOKIE_SAMESITE="Lax"`` when the app left it unset, and warns once
        when the session cookie is not ``Secure`` on a host other than loopback.

        Raises:
            LogtoConfigError: the storage is an :class:`AsyncRedisSessionStorage`, whose
                connections cannot follow Flask's per-view event loops.

        """
        if isinstance(self.storage, AsyncRedisStorage):
            raise LogtoConfigError(
                "LogtoFlask cannot use an AsyncRedisSessionStorage: Flask runs each async view in "
                "an event loop of its own, and an asyncio Redis connection belongs to one loop. "
                "Use RedisSessionStorage (a synchronous redis.Redis), which serves sync and async views."
            )
        config = self._config or LogtoConfig(
            endpoint=app.config["LOGTO_ENDPOINT"],
            appId=app.config["LOGTO_APP_ID"],
            appSecret=app.config.get("LOGTO_APP_SECRET"),
            scopes=list(app.config.get("LOGTO_SCOPES", [])),
            resources=list(app.config.get("LOGTO_RESOURCES", [])),
        )
        self._client = LogtoClient(config, storage=self.storage)
        app.extensions[EXTENSION_KEY] = self
        if self.backchannel_logout_path is not None:
            self.backchannel = self._backchannel(self._client, app.permanent_session_lifetime)
            app.add_url_rule(
                self.backchannel_logout_path,
                "logto_backchannel_logout",
                self.backchannel_logout,
                methods=["POST"],
            )
            if type(self.backchannel.sessions).is_ended is not SessionIndex.is_ended:
                app.before_request(self._end_revoked_session)
        if app.config.get("SESSION_COOKIE_SAMESITE") is None:
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
        app.add_url_rule(self.sign_in_path, "logto_sign_in", self.sign_in)
        app.add_url_rule(self.callback_path, "logto_callback", self.callback)
        app.add_url_rule(self.sign_out_path, "logto_sign_out", self.sign_out, methods=["GET", "POST"])
        app.register_error_handler(LogtoInvalidGrantError, self._session_ended)
        app.register_error_handler(LogtoNotAuthenticatedError, self._session_ended)
        app.register_error_handler(LogtoStorageError, self._storage_unavailable)
        app.before_request(self._check_cookie_security)

    def _backchannel(self, client: LogtoClient, cookie_lifetime: timedelta) -> BackchannelLogout:
        sessions, replays = self._session_index, self._replay_store
        if isinstance(self.storage, RedisStorage):
            storage = self.storage
            sessions = sessions or RedisSessionIndex(
                storage.redis, client.config.appId, prefix=storage.prefix, ttl=storage.ttl
            )
            replays = replays or RedisReplayStore(storage.redis)
        # A record outlives every copy of the cookie it ends (Flask signs it for this long).
        memory = MemoryRevocations(client.config.appId, ttl=cookie_lifetime)
        return BackchannelLogout(client, sessions or memory, replay_store=replays)

    def backchannel_logout(self) -> Response:
        """``POST backchannel_logout_path``: Logto's logout token ends the sessions it names.

        No CSRF token (the caller is Logto, not a browser; the signed token is the proof): 200
        when done, 400 ``{"error": ...}`` for a bad token, 413 for a body over 64 KiB (read no
        further), always ``Cache-Control: no-store``.
        """
        assert self.backchannel is not None
        body = read_limited(request.stream.read, request.headers.get("Content-Length"))
        answer = self.backchannel.respond_to_body(body)
        if answer.status != 200:
            logger.warning(
                "refused a back-channel logout: %s",
                answer.body.get("error_description", answer.body["error"]),
            )
        return Response(answer.json(), status=answer.status, headers=answer.headers)

    def _end_revoked_session(self) -> None:
        """Before each request: a cookie session that a back-channel logout ended is cleared."""
        if self.backchannel is None or request.endpoint == "logto_backchannel_logout":
            return
        client = self.client.blocking
        get = self.storage.get
        id_token = client.getIdToken() if inspect.iscoroutinefunction(get) else get("idToken")
        if self.backchannel.is_ended(session, id_token if isinstance(id_token, str) else None):
            client.clearAllTokens()

    def _storage_unavailable(self, error: LogtoStorageError) -> Response:
        """A session store out of reach answers 503 with ``Retry-After``, never 500.

        A refusal of the SDK's own (a strict cookie storage's ``storage.cookie_too_large``) is a
        bug to fix, not an outage: it propagates.
        """
        if is_refusal(error):
            raise error
        logger.warning("the session store failed: %s", error.code)
        return provider_unavailable_response(error)

    def _check_cookie_security(self) -> None:
        if self._cookie_checked:
            return
        self._cookie_checked = True
        message = insecure_cookie_message(request.host or "")
        if current_app.config.get("SESSION_COOKIE_SECURE") or message is None:
            return
        message += " (Flask: SESSION_COOKIE_SECURE = True)"
        logger.warning(message)
        warnings.warn(message, LogtoInsecureCookieWarning, stacklevel=2)

    def _session_ended(self, error: LogtoException) -> Response:
        """Answer a view whose session ended (grant revoked, signed out) as :func:`authenticated` does.

        A redirect to sign in or a JSON 401, never a 500.
        """
        should_redirect = g.get("_logto_should_redirect")
        if should_redirect is None:
            should_redirect = wants_redirect(request.method, request.accept_mimetypes.accept_html)
        logger.info("session ended in a view: %s", error.code)
        return self.unauthenticated(bool(should_redirect))

    @property
    def client(self) -> LogtoClient:
        """The app's client (one for all requests; its storage is the current session)."""
        if self._client is None:
            raise RuntimeError("LogtoFlask.init_app(app) has not been called")
        return self._client

    def _callback_url(self) -> str:
        return self.redirect_uri or url_for("logto_callback", _external=True)

    def sign_in(self) -> Response:
        """``GET sign_in_path``: remember ``?next=``, start a sign-in, redirect to Logto."""
        session[NEXT_KEY] = safe_next(request.args.get("next"))
        url = self.client.blocking.signIn(self._callback_url(), **self.sign_in_options)
        return redirect(url)

    def callback(self) -> Response:
        """``GET callback_path``: complete the sign-in, then return to where the user was going."""
        try:
            self.client.blocking.handleSignInCallback(request.url)
        except LogtoException as error:
            return self.error_response(error)
        if self.backchannel is not None:
            ids = self.storage.ids.get() if isinstance(self.storage, RedisStorage) else None
            self.backchannel.signed_in(session, self.client.blocking.getIdToken(), ids)
        return redirect(safe_next(session.pop(NEXT_KEY, None)))

    def sign_out(self) -> Response:
        """``POST sign_out_path``: clear the session, revoke, redirect to Logto's end-session.

        Only a same-origin ``POST`` signs out (checked with ``Sec-Fetch-Site``, else ``Origin``,
        else ``Referer``; a request with none of them is refused): a link or an image on
        another site cannot sign the user out. ``GET`` answers a page with the sign-out button.
        """
        if request.method != "POST":
            return self.sign_out_page()
        if not same_origin_request():
            logger.warning("refused a cross-site sign-out request")
            return Response("Cross-site sign-out refused.", status=403, mimetype="text/plain")
        post_sign_out = request.host_url.rstrip("/") + self.post_sign_out_path
        client = self.client.blocking
        id_token = client.getIdToken()
        url = client.signOut(post_sign_out)
        session.pop(NEXT_KEY, None)
        redis_ids = self.storage.ids.get() if isinstance(self.storage, RedisStorage) else None
        if self.backchannel is not None:
            self.backchannel.signed_out(session, id_token, redis_ids)
        if isinstance(self.storage, RedisStorage):
            self.storage.forget_session()
        return redirect(url)

    def sign_out_page(self) -> Response:
        """The page ``GET sign_out_path`` answers: a form that posts the sign-out."""
        body = (
            "<!doctype html><title>Sign out</title>"
            f'<form method="post" action="{escape(url_for("logto_sign_out"))}">'
            '<button type="submit">Sign out</button></form>'
        )
        return Response(body, status=200, mimetype="text/html")

    def error_response(self, error: LogtoException) -> Response:
        """The page shown when a sign-in callback fails; override it to render your own.

        Callback problems (forged state, replay, ``access_denied``) answer 400; a failing
        provider answers 502. The page shows the error code and message, never a token.
        """
        status = 400 if isinstance(error, LogtoCallbackError) else 502
        logger.warning("sign-in callback failed: %s (%s)", error.code, error)
        body = (
            "<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1>"
            f"<p>{escape(str(error))}</p><p><code>{escape(error.code)}</code></p>"
            f'<p><a href="{escape(url_for("logto_sign_in"))}">Try again</a></p>'
        )
        return Response(body, status=status, mimetype="text/html")

    def unauthenticated(self, should_redirect: bool) -> Response:
        """The answer to a request that needs a signed-in user: a redirect or JSON 401."""
        if should_redirect:
            target = request.full_path.rstrip("?") if request.query_string else request.path
            return redirect(url_for("logto_sign_in", next=target))
        response = jsonify({"error": "Not authenticated"})
        response.status_code = 401
        return response


def _extension() -> LogtoFlask:
    extension = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(extension, LogtoFlask):
        raise RuntimeError("@authenticated needs LogtoFlask(app, ...) to be set up")
    return extension


def authenticated(shouldRedirect: bool = False, fetchUserInfo: bool = False) -> Callable[[View], View]:  # noqa: N803
    """Protect a view: only signed-in users reach it, with their claims in ``g.user``.

    Args:
        shouldRedirect: Redirect an anonymous user to sign in (and back), instead of answering
            JSON 401 ``{"error": "Not authenticated"}``.
        fetchUserInfo: Put the userinfo (``UserInfoResponse``) in ``g.user`` instead of the ID
            token claims (``IdTokenClaims``).

    A session whose ID token has expired is refreshed first (the re-issued ID token verified),
    or treated as signed out when it cannot be. Works on sync views (no ``flask[async]``
    needed) and on ``async def`` views. When Logto cannot be reached (or answers garbage) the
    view is answered 503, not 500.
    """

    def decorator(view: View) -> View:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(*args: Any, **kwargs: Any) -> Any:
                extension = _extension()
                g._logto_should_redirect = shouldRedirect
                client = extension.client
                try:
                    if not await client._signed_in():
                        return extension.unauthenticated(shouldRedirect)
                    g.user = await (
                        client.fetchUserInfo() if fetchUserInfo else client.getIdTokenClaimsAsync()
                    )
                except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                    return extension.unauthenticated(shouldRedirect)
                except PROVIDER_OUTAGE as error:
                    return provider_unavailable_response(error)
                return await cast(Callable[..., Awaitable[Any]], view)(*args, **kwargs)

            return cast(View, async_view)

        @functools.wraps(view)
        def sync_view(*args: Any, **kwargs: Any) -> Any:
            extension = _extension()
            g._logto_should_redirect = shouldRedirect
            client = extension.client.blocking
            try:
                if not client._signed_in():
                    return extension.unauthenticated(shouldRedirect)
                g.user = client.fetchUserInfo() if fetchUserInfo else client.getIdTokenClaims()
            except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                return extension.unauthenticated(shouldRedirect)
            except PROVIDER_OUTAGE as error:
                return provider_unavailable_response(error)
            return view(*args, **kwargs)

        return cast(View, sync_view)

    return decorator
