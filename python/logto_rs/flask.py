"""Flask integration: session storages, the ``LogtoFlask`` extension and ``@authenticated``.

One :class:`LogtoFlask` per app holds one :class:`~logto_rs.LogtoClient` (one connection pool, one
discovery and JWKS cache), bound to each request's session as every integration binds it:
``client.withStorage(storage_for(request))`` (:meth:`LogtoFlask.client_for`). logto-rs calls the
storage in the request's own thread and context.

- :class:`FlaskSessionStorage` keeps the tokens in Flask's signed cookie session. It warns when
  the cookie would pass the 4 KB a browser keeps, which would silently sign the user out.
- :class:`RedisSessionStorage` / :class:`AsyncRedisSessionStorage` keep the tokens in Redis. The
  cookie then holds only a random session id; every key is namespaced by it and expires.
- :func:`require_access_token` protects an API view: it verifies the request's bearer token
  (``AccessTokenVerifier``) and answers 401/403 with RFC 6750 challenges.

Install with ``pip install logto-rs[flask]``.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
from collections.abc import Awaitable, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, cast

from flask import Flask, Request, current_app, g, has_request_context, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from ._flask_guard import (
    access_token_error_response,
    bearer_token,
    require_access_token,
)
from ._flows import ANSWERED, WebFlows, WebRequest, WebResponse
from ._sessions import (
    CookieSessionValues,
    LogtoInsecureCookieWarning,
    LogtoSessionTooLargeWarning,
    SessionKeyId,
    check_cookie_security,
)
from ._steps import drive_async, drive_blocking
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
    LogtoConfigError,
    LogtoException,
)
from .models import LogtoContext
from .redis_storage import AsyncRedisStorage, RedisStorage
from .storage import Storage
from .web import safe_next

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
    "get_context",
    "require_access_token",
    "safe_next",
]

logger = logging.getLogger("logto_rs.flask")

EXTENSION_KEY = "logto_rs"
"""Where the extension is registered in ``app.extensions``."""

View = TypeVar("View", bound=Callable[..., Any])


def _flask_session() -> Any:
    return session


def _request_session() -> MutableMapping[str, Any]:
    """The session of the request being served (Flask keeps it in the request context)."""
    current: MutableMapping[str, Any] = session._get_current_object()  # type: ignore[attr-defined]
    return current


class FlaskSessionStorage(CookieSessionValues):
    """Tokens in Flask's signed cookie session (``flask.session``), under ``prefix`` + key.

    Logto's tokens easily pass the 4 KB a browser keeps in one cookie (an ID token, a refresh
    token and a few access tokens). Past that the browser drops the cookie and the user is
    signed out without a word, so every write measures the cookie. When it gets too large, the
    storage warns (``LogtoSessionTooLargeWarning`` and the ``logto_rs.flask`` logger), or raises
    with ``strict=True``. Use :class:`RedisSessionStorage` instead for many tokens.

    The cookie is signed, not encrypted: anyone holding it can read the tokens in it.
    """

    advice = (
        "Keep the tokens server-side with logto_rs.flask.RedisSessionStorage instead of FlaskSessionStorage."
    )
    logger = logger
    _bound: Optional[MutableMapping[str, Any]] = None

    def for_request(self, request: Request) -> FlaskSessionStorage:
        """This storage bound to ``request``'s session (see :meth:`LogtoFlask.storage_for`)."""
        bound = copy.copy(self)
        bound._bound = _request_session()
        return bound

    def _session(self) -> Any:
        return session if self._bound is None else self._bound

    def _first_warning(self) -> bool:
        first = not g.get("_logto_cookie_warned")
        g._logto_cookie_warned = True
        return first

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


class FlaskSessionId(SessionKeyId):
    """Keeps the Redis session id in Flask's cookie session, under ``session_key``."""

    def __init__(self, session_key: str = "logto_sid") -> None:
        super().__init__(_flask_session, session_key)


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
        self.session_key = session_key

    def for_request(self, request: Request) -> RedisSessionStorage:
        """This storage bound to ``request``'s session (see :meth:`LogtoFlask.storage_for`)."""
        bound = copy.copy(self)
        current = _request_session()
        bound.ids = SessionKeyId(lambda: current, self.session_key)
        return bound


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


def _response(answer: WebResponse) -> Response:
    """The core's answer as a Flask response."""
    return Response(answer.body, status=answer.status, headers=dict(answer.headers))


class LogtoFlask:
    """The Flask extension: registers the sign-in, sign-up, callback and sign-out routes.

    ``LogtoFlask(app, config)`` or ``LogtoFlask(config=config)`` then ``init_app(app)``. Without
    a ``config``, it reads ``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``, ``LOGTO_APP_SECRET``,
    ``LOGTO_SCOPES`` and ``LOGTO_RESOURCES`` from ``app.config``. ``/sign-in?next=/path`` returns
    the user to ``/path`` after signing in (same-origin targets only); ``/sign-up`` opens Logto's
    sign-up screen. A failed callback renders :meth:`error_response`, which you can override.
    The flows themselves are the framework-free :class:`~logto_rs._flows.WebFlows`.

    Args:
        app: The Flask app, or ``None`` to call :meth:`init_app` later.
        config: The Logto configuration.
        storage: Where sessions live; defaults to :class:`FlaskSessionStorage`.
        sign_in_path: Route that starts a sign-in.
        sign_up_path: Route that starts a sign-up (``interactionMode="signUp"``); ``None``
            serves none.
        sign_up_first_screen: Logto's first screen for the sign-up route (``firstScreen``,
            e.g. ``identifier:register``).
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
        sign_up_path: Optional[str] = "/sign-up",
        sign_up_first_screen: Optional[str] = None,
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
        self.sign_up_path = sign_up_path
        self.sign_up_first_screen = sign_up_first_screen
        self.callback_path = callback_path
        self.sign_out_path = sign_out_path
        self.post_sign_out_path = post_sign_out_path
        self.redirect_uri = redirect_uri
        self.sign_in_options = dict(sign_in_options or {})
        self._client: Optional[LogtoClient] = None
        self._flows: Optional[WebFlows] = None
        self._cookie_checked = False
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the client for ``app``, register the routes and the error handlers.

        Also sets ``SESSION_COOKIE_SAMESITE="Lax"`` when the app left it unset, and warns once
        when the session cookie is not ``Secure`` on a host other than loopback. An outage
        raised by any view (Logto out of reach, the session store failing) answers 503 with
        ``Retry-After``; an ended session a redirect to sign in or 401.

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
        self._flows = WebFlows(
            backchannel=self.backchannel,
            sign_in_path=self.sign_in_path,
            redirect_uri=self.redirect_uri,
            post_sign_out_redirect_uri=self.post_sign_out_path,
            sign_in_options=self.sign_in_options,
        )
        if self._flows.keeps_records:
            app.before_request(self._end_revoked_session)
        if app.config.get("SESSION_COOKIE_SAMESITE") is None:
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
        app.add_url_rule(self.sign_in_path, "logto_sign_in", self.sign_in)
        if self.sign_up_path is not None:
            app.add_url_rule(self.sign_up_path, "logto_sign_up", self.sign_up)
        app.add_url_rule(self.callback_path, "logto_callback", self.callback)
        app.add_url_rule(self.sign_out_path, "logto_sign_out", self.sign_out, methods=["GET", "POST"])
        for error in ANSWERED:
            app.register_error_handler(error, self._answer_error)
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

    @property
    def client(self) -> LogtoClient:
        """The app's client: in a request, bound to its session (:meth:`client_for`).

        Outside a request, the one client of the app, whose storage is the configured one.
        """
        if self._client is None:
            raise RuntimeError("LogtoFlask.init_app(app) has not been called")
        return self.client_for() if has_request_context() else self._client

    def storage_for(self, request: Request) -> Storage:
        """The storage of ``request``'s session: the configured storage bound to it.

        A storage without ``for_request`` (one of your own) serves every request as it is.
        """
        for_request = getattr(self.storage, "for_request", None)
        return self.storage if for_request is None else cast(Storage, for_request(request))

    def client_for(self) -> LogtoClient:
        """The app's client bound to the current request's session, made once per request.

        ``client.withStorage(storage_for(request))``: the binding rule of every integration.
        """
        bound = g.get("_logto_client")
        if not isinstance(bound, LogtoClient):
            if self._client is None:
                raise RuntimeError("LogtoFlask.init_app(app) has not been called")
            g._logto_storage = self.storage_for(request)
            bound = g._logto_client = self._client.withStorage(g._logto_storage)
        return bound

    def _request_storage(self) -> Storage:
        self.client_for()
        storage: Storage = g._logto_storage
        return storage

    @property
    def flows(self) -> WebFlows:
        """The framework-free flows this extension serves."""
        if self._flows is None:
            raise RuntimeError("LogtoFlask.init_app(app) has not been called")
        return self._flows

    def web_request(self) -> WebRequest:
        """The current Flask request, as the flows read it."""
        storage = self._request_storage()
        ids = storage.ids if isinstance(storage, RedisStorage) else None
        return WebRequest(
            method=request.method,
            url=request.url,
            host_url=request.host_url,
            full_path=request.full_path.rstrip("?") if request.query_string else request.path,
            headers=request.headers,
            query=request.args,
            session=session,
            session_id=ids.get if ids is not None else lambda: None,
        )

    def _forget(self) -> None:
        storage = self._request_storage()
        if isinstance(storage, RedisStorage):
            storage.forget_session()

    def backchannel_logout(self) -> Response:
        """``POST backchannel_logout_path``: Logto's logout token ends the sessions it names.

        See :meth:`~logto_rs._flows.WebFlows.backchannel_logout`.
        """
        body = read_limited(request.stream.read, request.headers.get("Content-Length"))
        return _response(drive_blocking(self.flows.backchannel_logout(self.client_for().blocking, body)))

    def _end_revoked_session(self) -> None:
        """Before each request: a cookie session that a back-channel logout ended is cleared."""
        if request.endpoint != "logto_backchannel_logout":
            drive_blocking(self.flows.drop_ended_session(self.client_for().blocking, self.web_request()))

    def _answer_error(self, error: LogtoException) -> Response:
        """An outage answers 503 with ``Retry-After``; an ended session as :func:`authenticated` does.

        See :meth:`~logto_rs._flows.WebFlows.error_answer`; anything else (a strict cookie
        storage's ``storage.cookie_too_large``) is a bug to fix: it propagates.
        """
        answer = self.flows.error_answer(self.web_request(), error, g.get("_logto_should_redirect"))
        if answer is None:
            raise error
        return _response(answer)

    def _check_cookie_security(self) -> None:
        if self._cookie_checked:
            return
        self._cookie_checked = True
        check_cookie_security(
            request.host or "",
            bool(current_app.config.get("SESSION_COOKIE_SECURE")),
            "Flask: SESSION_COOKIE_SECURE = True",
            logger,
        )

    def _callback_url(self) -> str:
        return url_for("logto_callback", _external=True)

    def sign_in(self) -> Response:
        """``GET sign_in_path``: start a sign-in (``?next=`` kept when same-origin), redirect to Logto."""
        steps = self.flows.sign_in(self.client_for().blocking, self.web_request(), self._callback_url())
        return _response(drive_blocking(steps))

    def sign_up(self) -> Response:
        """``GET sign_up_path``: :meth:`sign_in` on Logto's sign-up screen."""
        steps = self.flows.sign_in(
            self.client_for().blocking,
            self.web_request(),
            self._callback_url(),
            interaction_mode="signUp",
            first_screen=self.sign_up_first_screen,
        )
        return _response(drive_blocking(steps))

    def callback(self) -> Response:
        """``GET callback_path``: complete the sign-in, then return to where the user was going."""
        answer = drive_blocking(self.flows.callback(self.client_for().blocking, self.web_request()))
        if answer.error is not None:
            return self.error_response(answer.error)
        return _response(answer)

    def sign_out(self) -> Response:
        """``POST sign_out_path``: revoke, clear the session, redirect to Logto's end-session.

        Only a same-origin ``POST`` signs out (checked with ``Sec-Fetch-Site``, else ``Origin``,
        else ``Referer``; a request with none of them is refused): a link or an image on
        another site cannot sign the user out. ``GET`` answers a page with the sign-out button.
        """
        steps = self.flows.sign_out(self.client_for().blocking, self.web_request(), self._forget)
        return _response(drive_blocking(steps))

    def error_response(self, error: LogtoException) -> Response:
        """The page shown when a sign-in callback fails; override it to render your own.

        Callback problems (forged state, replay, ``access_denied``) answer 400; a failing
        provider answers 502. The page says what happened in fixed words and shows the error
        code: the provider's ``error_description`` and the query's text are never shown.
        """
        return _response(self.flows.callback_error(error))

    def unauthenticated(self, should_redirect: Optional[bool]) -> Response:
        """The answer to a request that needs a signed-in user: a redirect or JSON 401.

        ``None`` decides by the request: a browser navigating is redirected.
        """
        return _response(self.flows.unauthenticated(self.web_request(), should_redirect))


def _extension() -> LogtoFlask:
    extension = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(extension, LogtoFlask):
        raise RuntimeError("@authenticated needs LogtoFlask(app, ...) to be set up")
    return extension


def authenticated(
    shouldRedirect: Optional[bool] = None,  # noqa: N803
    fetchUserInfo: bool = False,  # noqa: N803
) -> Callable[[View], View]:
    """Protect a view: only signed-in users reach it, with their claims in ``g.user``.

    The official SDK's decorator, with its camelCase arguments.

    Args:
        shouldRedirect: ``True`` redirects every anonymous request to sign in (and back),
            ``False`` answers it JSON 401 ``{"error": "Not authenticated"}``; by default a
            browser navigating (``GET`` accepting HTML) is redirected and anyone else gets 401.
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
                user = await drive_async(extension.flows.user(extension.client_for(), fetchUserInfo))
                if user is None:
                    return extension.unauthenticated(shouldRedirect)
                g.user = user
                return await cast(Callable[..., Awaitable[Any]], view)(*args, **kwargs)

            return cast(View, async_view)

        @functools.wraps(view)
        def sync_view(*args: Any, **kwargs: Any) -> Any:
            extension = _extension()
            g._logto_should_redirect = shouldRedirect
            user = drive_blocking(extension.flows.user(extension.client_for().blocking, fetchUserInfo))
            if user is None:
                return extension.unauthenticated(shouldRedirect)
            g.user = user
            return view(*args, **kwargs)

        return cast(View, sync_view)

    return decorator


def get_context(
    *, fetch_user_info: bool = False, access_tokens: bool = False, organization_tokens: bool = False
) -> LogtoContext:
    """The current request's :class:`~logto_rs.LogtoContext`, in one call and one storage read.

    ``is_authenticated`` and the ID token ``claims``; with ``fetch_user_info`` the userinfo,
    with ``access_tokens`` a token per configured resource, with ``organization_tokens`` a token
    per organization of the user. An anonymous request gets ``is_authenticated=False``.
    """
    return (
        _extension()
        .client_for()
        .blocking.getContext(
            fetch_user_info=fetch_user_info,
            access_tokens=access_tokens,
            organization_tokens=organization_tokens,
        )
    )
