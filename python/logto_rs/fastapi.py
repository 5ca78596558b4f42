"""FastAPI (and Starlette) integration: session storages, the sign-in routes, dependencies, a guard.

One :class:`LogtoFastAPI` per app holds one :class:`~logto_rs.LogtoClient`; every request gets a
view of it bound to its own session (:meth:`LogtoClient.withStorage`), so the connection pool,
the discovery and key caches and the refresh coordination serve every user::

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key="...", https_only=True)
    logto = LogtoFastAPI(config)            # sessions in the signed cookie; or RedisSessionStorage
    logto.init_app(app)                     # the routes and the exception handlers


    @app.get("/me")
    async def me(user: IdTokenClaims = Depends(logto.claims())) -> dict[str, str]:
        return {"sub": user.sub}

- :class:`CookieSessionStorage` keeps the tokens in Starlette's signed cookie session
  (``SessionMiddleware``) and warns before the cookie passes the 4 KB a browser keeps.
- :class:`RedisSessionStorage` keeps them in Redis (``redis.asyncio``), with the session lock
  that makes several workers refresh a session once, and a session id rotated at each callback. It
  opens its connections in each event loop that uses it.
- :func:`require_access_token` protects an API route with Logto access tokens
  (:class:`~logto_rs.AccessTokenVerifier`): 401/403 with RFC 6750 challenges, shown in the
  OpenAPI document as an HTTP bearer scheme.

Install with ``pip install logto-rs[fastapi]`` (and ``redis`` for :class:`RedisSessionStorage`).
"""

import base64
import json
import logging
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Protocol, Union

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ._flows import ANSWERED, WebFlows, WebRequest, WebResponse
from ._sessions import (
    CookieSessionValues,
    LogtoInsecureCookieWarning,
    LogtoSessionTooLargeWarning,
    SessionKeyId,
    check_cookie_security,
)
from ._steps import drive_async
from .backchannel import (
    MAX_BODY,
    BackchannelLogout,
    MemoryRevocations,
    RedisReplayStore,
    RedisSessionIndex,
    ReplayStore,
    SessionIndex,
    declared_too_large,
)
from .client import LogtoClient
from .config import LogtoConfig
from .errors import (
    LogtoConfigError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoNotAuthenticatedError,
)
from .guard import BearerRejection, check_bearer_async
from .models import AccessTokenClaims, IdTokenClaims, LogtoContext, UserInfoResponse
from .redis_storage import SOCKET_TIMEOUTS as SOCKET_TIMEOUTS
from .redis_storage import AsyncRedisClient, AsyncRedisStorage
from .sessions.starlette import COOKIE_SIZE_SCOPE_KEY
from .storage import MemoryStorage, Storage
from .verifier import DEFAULT_ROLES_CLAIM, AccessTokenVerifier, Scopes, role_list, scope_list
from .web import (
    COOKIE_LIMIT,
    renamed_keyword,
)

if TYPE_CHECKING:
    import redis.asyncio

__all__ = [
    "CookieSessionStorage",
    "LogtoFastAPI",
    "LogtoInsecureCookieWarning",
    "LogtoSessionTooLargeWarning",
    "OrganizationId",
    "RedisSessionStorage",
    "SessionStorage",
    "StarletteSessionId",
    "require_access_token",
]

logger = logging.getLogger("logto_rs.fastapi")

CLIENT_STATE = "logto_client"
"""``request.state`` attribute of the request's client view."""

REDIRECT_STATE = "logto_redirect"
"""``request.state`` attribute: whether the route asked to redirect an anonymous user."""


def _session(request: Request) -> dict[str, Any]:
    if "session" not in request.scope:
        raise LogtoConfigError(
            "logto_rs.fastapi needs Starlette's SessionMiddleware: "
            'app.add_middleware(SessionMiddleware, secret_key="...")',
            "config.invalid",
        )
    session: dict[str, Any] = request.session
    return session


class SessionStorage(Protocol):
    """Where :class:`LogtoFastAPI` keeps sessions: a storage bound to each request."""

    def for_request(self, request: Request) -> Storage:
        """The storage of ``request``'s session."""


class _CookieSession(CookieSessionValues):
    """One request's cookie session (see :class:`CookieSessionStorage`)."""

    advice = (
        "Keep the tokens server-side with logto_rs.fastapi.RedisSessionStorage "
        "instead of CookieSessionStorage."
    )
    logger = logger

    def __init__(self, owner: "CookieSessionStorage", request: Request) -> None:
        super().__init__(owner.prefix, max_cookie_bytes=owner.max_cookie_bytes, strict=owner.strict)
        self.owner = owner
        self.request = request

    def _session(self) -> dict[str, Any]:
        return _session(self.request)

    def cookie_size(self) -> Optional[int]:
        # An encrypted session middleware (logto_rs.sessions.starlette) measures its own cookie.
        session = self._session()
        measure: Callable[[dict[str, Any]], int] = self.request.scope.get(
            COOKIE_SIZE_SCOPE_KEY, self.owner.cookie_size
        )
        return measure(session)

    def _first_warning(self) -> bool:
        first = not getattr(self.request.state, "logto_cookie_warned", False)
        self.request.state.logto_cookie_warned = True
        return first


class CookieSessionStorage:
    """Tokens in Starlette's signed cookie session (``request.session``), under ``prefix`` + key.

    Logto's tokens easily pass the 4 KB a browser keeps in one cookie (an ID token, a refresh
    token and a few access tokens). Past that the browser drops the cookie and the user is
    signed out without a word, so every write measures the cookie. When it gets too large, the
    storage warns (``LogtoSessionTooLargeWarning`` and the ``logto_rs.fastapi`` logger), or
    raises with ``strict=True``. Use :class:`RedisSessionStorage` for many tokens.

    The cookie is signed, not encrypted: anyone holding it can read the tokens in it.

    Args:
        prefix: Prefix of the session keys.
        max_cookie_bytes: The size past which a write warns (or raises).
        strict: Raise ``LogtoException`` (``storage.cookie_too_large``) instead of warning.
        cookie_name: The ``session_cookie`` given to ``SessionMiddleware``.

    """

    def __init__(
        self,
        prefix: str = "logto_",
        *,
        max_cookie_bytes: int = COOKIE_LIMIT,
        strict: bool = False,
        cookie_name: str = "session",
    ) -> None:
        self.prefix = prefix
        self.max_cookie_bytes = max_cookie_bytes
        self.strict = strict
        self.cookie_name = cookie_name

    def for_request(self, request: Request) -> Storage:
        """The storage of ``request``'s cookie session."""
        return _CookieSession(self, request)

    def cookie_size(self, session: dict[str, Any]) -> int:
        """The size in bytes ``SessionMiddleware``'s cookie would have for ``session``."""
        value = base64.b64encode(json.dumps(session).encode("utf-8"))
        # name=value, the signer's ".timestamp.signature" (35 bytes) and the attributes
        # (path, Max-Age, httponly, samesite, secure).
        return len(self.cookie_name) + 1 + len(value) + 35 + 70


class StarletteSessionId(SessionKeyId):
    """Keeps the Redis session id in Starlette's cookie session, under ``session_key``."""

    def __init__(self, request: Request, session_key: str = "logto_sid") -> None:
        super().__init__(lambda: _session(request), session_key)
        self.request = request


class RedisSessionStorage:
    """Tokens in Redis over ``redis.asyncio``; Starlette's cookie session holds a random session id.

    Keys are ``<prefix>{<session id>}:<key>`` and expire ``ttl`` after their last write; signing
    out deletes them. Several workers and hosts share a session: refreshes take the session's
    lock in Redis, and the session id is rotated after each callback.

    An asyncio connection belongs to the event loop that opened it, so this storage opens one
    client (one pool) per running event loop (:attr:`redis`, a
    :class:`~logto_rs.redis_storage.AsyncRedisClient`), from ``url`` or the
    ``redis.asyncio.Redis`` keyword arguments, and drops it with its loop. The back-channel
    stores :class:`LogtoFastAPI` builds over this storage share it. Call :meth:`aclose` at
    shutdown (the app's lifespan) to close the current loop's connections.

    Args:
        url: ``redis://`` URL (``redis.asyncio.Redis.from_url``); ``None`` to use ``redis_kwargs``.
        prefix: Prefix of every key.
        ttl: How long a session lives after its last write.
        session_key: Key of the session id in the cookie session.
        redis_kwargs: More arguments of ``redis.asyncio.Redis`` (or of ``from_url``). The
            socket timeouts default to :data:`SOCKET_TIMEOUTS`: a stalled Redis then fails the
            requests that need it with 503 instead of holding them forever. Or ``client_factory``
            alone: a Redis Cluster's or a Sentinel's asyncio client per event loop
            (:class:`~logto_rs.redis_storage.AsyncRedisClient`).

    """

    def __init__(
        self,
        url: Optional[str] = None,
        *,
        prefix: str = "logto:",
        ttl: timedelta = timedelta(days=14),
        session_key: str = "logto_sid",
        **redis_kwargs: Any,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl = ttl
        self.session_key = session_key
        self.redis = AsyncRedisClient(url, **redis_kwargs)
        """The running event loop's Redis client, shared with the back-channel stores."""
        self.redis_kwargs = self.redis.redis_kwargs

    def client(self) -> "redis.asyncio.Redis":
        """The Redis client of the running event loop (opened on first use in that loop)."""
        return self.redis.client()

    async def aclose(self) -> None:
        """Close the running event loop's client (call it at shutdown)."""
        await self.redis.aclose()

    def for_request(self, request: Request) -> AsyncRedisStorage:
        """The storage of ``request``'s session (in the running loop's client)."""
        return AsyncRedisStorage(
            self.client(), StarletteSessionId(request, self.session_key), prefix=self.prefix, ttl=self.ttl
        )

    def __repr__(self) -> str:
        return f"RedisSessionStorage(prefix={self.prefix!r}, ttl={self.ttl!r})"


SESSION_MAX_AGE = 14 * 24 * 3600
"""``SessionMiddleware``'s default ``max_age`` (seconds): how long its signed cookie is accepted."""


def _response(answer: WebResponse) -> Response:
    """The core's answer as a Starlette response."""
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))


class LogtoFastAPI:
    """Sign-in routes, per-request clients and dependencies for a FastAPI (or Starlette) app.

    ``logto.init_app(app)`` includes :attr:`router` (``GET sign_in_path?next=/path``,
    ``GET sign_up_path``, ``GET callback_path``, ``GET``/``POST sign_out_path``) and the
    exception handlers that turn an ended session (:class:`~logto_rs.LogtoInvalidGrantError`,
    :class:`~logto_rs.LogtoNotAuthenticatedError`) raised anywhere into a 401 or a redirect to
    sign in, and an outage (Logto or the session store out of reach) into 503 with
    ``Retry-After``. The app needs Starlette's ``SessionMiddleware``. The flows themselves are
    the framework-free :class:`~logto_rs._flows.WebFlows`.

    :attr:`client` is the app's one client, bound to no user; routes use it through
    :meth:`client_for`, which binds it to the request's session.

    Behind a reverse proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips=<proxy>``
    and have the proxy pass the ``Host`` header, or set ``redirect_uri`` and
    ``post_sign_out_redirect_uri``.

    Args:
        config: The Logto configuration.
        storage: Where sessions live; defaults to :class:`CookieSessionStorage`.
        sign_in_path: Route that starts a sign-in.
        sign_up_path: Route that starts a sign-up (``interactionMode="signUp"``); ``None``
            serves none.
        sign_up_first_screen: Logto's first screen for the sign-up route (``firstScreen``).
        callback_path: Route the provider redirects back to (register its URL in Logto).
        sign_out_path: Route that signs out.
        post_sign_out_path: Where the provider sends the user after signing out (register it).
        redirect_uri: The full callback URL; by default built from the request.
        post_sign_out_redirect_uri: The full post sign-out URL; by default built from the request.
        sign_in_options: Extra keyword arguments for :meth:`LogtoClient.signIn`.
        prefix: Prefix of the router's paths (as ``include_router(prefix=...)``).
        backchannel_logout_path: Route Logto POSTs logout tokens to (register its URL as the
            app's back-channel logout URI); ``None`` serves none.
        session_index: Where back-channel logouts find sessions; defaults to a
            :class:`~logto_rs.backchannel.RedisSessionIndex` over a :class:`RedisSessionStorage`
            (its asyncio client), else :class:`~logto_rs.backchannel.MemoryRevocations` (one
            process). Its calls are awaited on the event loop, never run in a thread: a Redis
            store needs an asyncio client (``redis.asyncio.Redis``, or
            :class:`~logto_rs.redis_storage.AsyncRedisClient`, whose socket timeouts default to
            5 s); a synchronous ``redis.Redis`` is refused (``LogtoConfigError``).
        replay_store: Where logout token ids are remembered; defaults to a
            :class:`~logto_rs.backchannel.RedisReplayStore` over a :class:`RedisSessionStorage`,
            else this process's memory. Asyncio clients only, as ``session_index``.

    """

    def __init__(
        self,
        config: LogtoConfig,
        *,
        storage: Optional[SessionStorage] = None,
        sign_in_path: str = "/sign-in",
        sign_up_path: Optional[str] = "/sign-up",
        sign_up_first_screen: Optional[str] = None,
        callback_path: str = "/callback",
        sign_out_path: str = "/sign-out",
        post_sign_out_path: str = "/",
        redirect_uri: Optional[str] = None,
        post_sign_out_redirect_uri: Optional[str] = None,
        sign_in_options: Optional[dict[str, Any]] = None,
        prefix: str = "",
        backchannel_logout_path: Optional[str] = "/backchannel-logout",
        session_index: Optional[SessionIndex] = None,
        replay_store: Optional[ReplayStore] = None,
    ) -> None:
        self.client = LogtoClient(config, storage=MemoryStorage())
        self.storage: SessionStorage = storage if storage is not None else CookieSessionStorage()
        self.backchannel: Optional[BackchannelLogout] = None
        if backchannel_logout_path is not None:
            self.backchannel = self._backchannel(session_index, replay_store)
        self.post_sign_out_path = post_sign_out_path
        self.redirect_uri = redirect_uri
        self.post_sign_out_redirect_uri = post_sign_out_redirect_uri
        self.sign_in_options = dict(sign_in_options or {})
        self.sign_up_first_screen = sign_up_first_screen
        self.flows = WebFlows(
            backchannel=self.backchannel,
            sign_in_path=prefix + sign_in_path,
            redirect_uri=redirect_uri,
            post_sign_out_redirect_uri=post_sign_out_redirect_uri or post_sign_out_path,
            sign_in_options=self.sign_in_options,
        )
        """The framework-free flows this integration serves."""
        self._cookie_checked = False
        self._routes = [
            (prefix + sign_in_path, self.sign_in, ["GET"], "logto_sign_in"),
            (prefix + callback_path, self.callback, ["GET"], "logto_callback"),
            (prefix + sign_out_path, self.sign_out, ["GET", "POST"], "logto_sign_out"),
        ]
        if sign_up_path is not None:
            self._routes.append((prefix + sign_up_path, self.sign_up, ["GET"], "logto_sign_up"))
        if backchannel_logout_path is not None:
            path = prefix + backchannel_logout_path
            self._routes.append((path, self.backchannel_logout, ["POST"], "logto_backchannel_logout"))
        self.router = APIRouter(tags=["authentication"], include_in_schema=False)
        """The sign-in, callback and sign-out routes, for ``app.include_router``."""
        for path, endpoint, methods, name in self._routes:
            self.router.add_api_route(path, endpoint, methods=methods, name=name)

    def routes(self) -> list[Route]:
        """The same routes as :attr:`router`, as plain Starlette routes (``Starlette(routes=...)``)."""
        return [
            Route(path, endpoint, methods=methods, name=name)
            for path, endpoint, methods, name in self._routes
        ]

    # -- wiring -------------------------------------------------------------------------------

    def init_app(self, app: Any) -> None:
        """Include :attr:`router` in ``app`` and add :meth:`exception_handlers`.

        For a plain Starlette app, pass ``routes=[*logto.routes(), ...]`` and
        ``exception_handlers=logto.exception_handlers()`` to ``Starlette(...)`` instead.
        """
        app.include_router(self.router)
        for error, handler in self.exception_handlers().items():
            app.add_exception_handler(error, handler)
        options = _session_options(app)
        max_age = options.get("max_age", SESSION_MAX_AGE) if options is not None else None
        sessions = self.backchannel.sessions if self.backchannel is not None else None
        if isinstance(sessions, MemoryRevocations) and isinstance(max_age, int) and max_age > 0:
            # A record outlives every copy of the cookie it ends (Starlette signs it for this long).
            sessions.ttl = timedelta(seconds=max_age)

    def exception_handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        """Handlers answering an ended session (401 or a redirect) or an outage (503).

        Never a 500.
        """
        return {error: self._answer_error for error in ANSWERED}

    async def client_for(self, request: Request) -> LogtoClient:
        """The app's client bound to ``request``'s session (one view per request).

        Use it as a dependency: ``client: LogtoClient = Depends(logto.client_for)``.
        """
        return await self._view(request)

    async def _view(self, request: Request) -> LogtoClient:
        """:meth:`client_for`, called in the request's event loop.

        A cookie session that a back-channel logout or a sign-out ended is cleared before use.
        The records are awaited on the loop (an asyncio Redis client): a stalled store holds up
        only the requests that need it, which answer 503 once its socket timeout passes.
        """
        client = getattr(request.state, CLIENT_STATE, None)
        if not isinstance(client, LogtoClient):
            self._check_cookie_security(request)
            storage = self.storage.for_request(request)
            client = self.client.withStorage(storage)
            if self.flows.keeps_records:
                await drive_async(self.flows.drop_ended_session(client, self.web_request(request)))
            setattr(request.state, CLIENT_STATE, client)
        return client

    def web_request(self, request: Request) -> WebRequest:
        """``request`` as the flows read it."""
        url = request.url
        ids = self._ids(request)
        return WebRequest(
            method=request.method,
            url=str(url),
            host_url=f"{url.scheme}://{url.netloc}",
            full_path=url.path + (f"?{url.query}" if url.query else ""),
            headers=request.headers,
            query=request.query_params,
            session=_session(request),
            session_id=ids.get if ids is not None else lambda: None,
        )

    def _ids(self, request: Request) -> Optional[StarletteSessionId]:
        if isinstance(self.storage, RedisSessionStorage):
            return StarletteSessionId(request, self.storage.session_key)
        return None

    def _backchannel(
        self, sessions: Optional[SessionIndex], replays: Optional[ReplayStore]
    ) -> BackchannelLogout:
        app_id = self.client.config.appId
        storage = self.storage
        for store in (sessions, replays):
            _refuse_synchronous_redis(store)
        if isinstance(storage, RedisSessionStorage):
            sessions = sessions or RedisSessionIndex(
                storage.redis, app_id, prefix=storage.prefix, ttl=storage.ttl
            )
            replays = replays or RedisReplayStore(storage.redis)
        return BackchannelLogout(self.client, sessions or MemoryRevocations(app_id), replay_store=replays)

    async def backchannel_logout(self, request: Request) -> Response:
        """``POST backchannel_logout_path``: Logto's logout token ends the sessions it names.

        See :meth:`~logto_rs._flows.WebFlows.backchannel_logout`; the provider and the stores
        are awaited on the event loop.
        """
        # Logto posts application/x-www-form-urlencoded (parsed without python-multipart), and
        # at most MAX_BODY bytes are read: a declared or actual larger body is answered 413.
        body: Optional[bytes] = None
        if not declared_too_large(request.headers.get("content-length")):
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    body = None
                    break
        return _response(await drive_async(self.flows.backchannel_logout(self.client, body)))

    def _check_cookie_security(self, request: Request) -> None:
        if self._cookie_checked:
            return
        self._cookie_checked = True
        https_only = _https_only(request.app)
        check_cookie_security(
            request.url.netloc,
            None if https_only is None else https_only,
            "Starlette: SessionMiddleware(..., https_only=True)",
            logger,
        )

    # -- routes -------------------------------------------------------------------------------

    def callback_url(self, request: Request) -> str:
        """The redirect URI sent to Logto: ``redirect_uri``, else the callback route's URL."""
        return self.flows.callback_url(str(request.url_for("logto_callback")))

    def post_sign_out_url(self, request: Request) -> str:
        """Where Logto sends the user after signing out."""
        return self.flows.post_sign_out_url(self.web_request(request))

    async def sign_in(self, request: Request) -> Response:
        """``GET sign_in_path``: start a sign-in (``?next=`` kept when same-origin), redirect to Logto."""
        client = await self._view(request)
        steps = self.flows.sign_in(client, self.web_request(request), self.callback_url(request))
        return _response(await drive_async(steps))

    async def sign_up(self, request: Request) -> Response:
        """``GET sign_up_path``: :meth:`sign_in` on Logto's sign-up screen."""
        client = await self._view(request)
        steps = self.flows.sign_in(
            client,
            self.web_request(request),
            self.callback_url(request),
            interaction_mode="signUp",
            first_screen=self.sign_up_first_screen,
        )
        return _response(await drive_async(steps))

    async def callback(self, request: Request) -> Response:
        """``GET callback_path``: complete the sign-in, then return to where the user was going."""
        client = await self._view(request)
        answer = await drive_async(self.flows.callback(client, self.web_request(request)))
        if answer.error is not None:
            return await self.error_response(request, answer.error)
        return _response(answer)

    async def sign_out(self, request: Request) -> Response:
        """``POST sign_out_path``: revoke, clear the session, redirect to Logto's end-session.

        Only a same-origin ``POST`` signs out (``Sec-Fetch-Site``, else ``Origin``, else
        ``Referer``; a request with none of them is refused), so a link or an image on another
        site cannot sign the user out. ``GET`` answers a page with the sign-out button.
        """
        client = await self._view(request)
        ids = self._ids(request)
        forget = ids.clear if ids is not None else lambda: None
        return _response(await drive_async(self.flows.sign_out(client, self.web_request(request), forget)))

    async def error_response(self, request: Request, error: LogtoException) -> Response:
        """The page shown when a sign-in callback fails; override it to render your own.

        Callback problems (forged state, a replay, ``access_denied``) answer 400; a failing
        provider answers 502. The page says what happened in fixed words and shows the error
        code: the query string's text (``error_description``, for one) is attacker-controlled
        and never shown. The error is logged by its code.
        """
        return _response(self.flows.callback_error(error))

    # -- anonymous users, ended sessions, outages ----------------------------------------------

    def sign_in_url(self, request: Request) -> str:
        """The sign-in route's URL returning to the current request's path."""
        return self.flows.sign_in_url(self.web_request(request))

    def unauthenticated(
        self, request: Request, should_redirect: Optional[bool] = None, *, redirect: Optional[bool] = None
    ) -> HTTPException:
        """The exception answering a request that needs a signed-in user: a redirect to sign in, or 401.

        ``should_redirect`` ``None`` decides by the request: a browser navigating is redirected
        (``redirect`` is its deprecated name).
        """
        should_redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)
        answer = self.flows.unauthenticated(self.web_request(request), should_redirect)
        return HTTPException(answer.status, answer.detail, headers=dict(answer.headers) or None)

    async def _answer_error(self, request: Request, exc: Exception) -> Response:
        """:meth:`~logto_rs._flows.WebFlows.error_answer` in FastAPI's ``{"detail": ...}``."""
        redirect = getattr(request.state, REDIRECT_STATE, None)
        answer = self.flows.error_answer(self.web_request(request), exc, redirect)
        if answer is None:
            raise exc  # the SDK's own refusal (a strict cookie storage): a bug, not an outage
        if answer.location is not None:
            return RedirectResponse(answer.location, status_code=answer.status)
        headers = {name: value for name, value in answer.headers.items() if name != "Content-Type"}
        return JSONResponse({"detail": answer.detail}, status_code=answer.status, headers=headers or None)

    # -- dependencies -------------------------------------------------------------------------

    async def _signed_in(self, request: Request, redirect: Optional[bool]) -> LogtoClient:
        setattr(request.state, REDIRECT_STATE, redirect)
        client = await self._view(request)
        try:
            if await client._signed_in():
                return client
        except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
            pass
        raise self.unauthenticated(request, redirect)

    def claims(
        self, *, should_redirect: Optional[bool] = None, redirect: Optional[bool] = None
    ) -> Callable[[Request], Awaitable[IdTokenClaims]]:
        """A dependency giving the signed-in user's ID token claims.

        Args:
            should_redirect: ``True`` sends every anonymous request to sign in (and back),
                ``False`` answers it 401 ``{"detail": "Not authenticated"}``; by default a
                browser navigating (``GET`` accepting HTML) is redirected and anyone else gets 401.
            redirect: Deprecated name of ``should_redirect``.

        """
        should_redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)
        return self._user(should_redirect, fetch_user_info=False)

    def userinfo(
        self, *, should_redirect: Optional[bool] = None, redirect: Optional[bool] = None
    ) -> Callable[[Request], Awaitable[UserInfoResponse]]:
        """A dependency giving the signed-in user's userinfo, fetched from Logto at each request.

        ``should_redirect`` as in :meth:`claims` (``redirect`` is its deprecated name).
        """
        should_redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)
        return self._user(should_redirect, fetch_user_info=True)

    def _user(
        self, redirect: Optional[bool], *, fetch_user_info: bool
    ) -> Callable[[Request], Awaitable[Any]]:
        async def signed_in_user(request: Request) -> Any:
            setattr(request.state, REDIRECT_STATE, redirect)
            client = await self._view(request)
            user = await drive_async(self.flows.user(client, fetch_user_info))
            if user is None:
                raise self.unauthenticated(request, redirect)
            return user

        return signed_in_user

    def context(
        self, *, fetch_user_info: bool = False, access_tokens: bool = False, organization_tokens: bool = False
    ) -> Callable[[Request], Awaitable[LogtoContext]]:
        """A dependency giving the request's :class:`~logto_rs.LogtoContext` in one call.

        ``is_authenticated`` and the ID token ``claims``; with ``fetch_user_info`` the userinfo,
        with ``access_tokens`` a token per configured resource, with ``organization_tokens`` a
        token per organization of the user. An anonymous request gets ``is_authenticated=False``
        (no 401): the route decides.
        """

        async def logto_context(request: Request) -> LogtoContext:
            client = await self._view(request)
            return await client.getContext(
                fetch_user_info=fetch_user_info,
                access_tokens=access_tokens,
                organization_tokens=organization_tokens,
            )

        return logto_context

    async def _token(
        self,
        request: Request,
        redirect: Optional[bool],
        fetch: Callable[[LogtoClient], Awaitable[Optional[str]]],
    ) -> str:
        """The token ``fetch`` gets from the request's signed-in client, else the anonymous answer.

        No session, no token, or a refresh Logto refused are all the anonymous answer.
        """
        client = await self._signed_in(request, redirect)
        try:
            token = await fetch(client)
        except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
            token = None
        if not token:
            raise self.unauthenticated(request, redirect)
        return token

    def access_token(
        self, resource: str = "", *, should_redirect: Optional[bool] = None, redirect: Optional[bool] = None
    ) -> Callable[[Request], Awaitable[str]]:
        """A dependency giving the signed-in user's access token for ``resource`` (refreshed when due).

        ``should_redirect`` as in :meth:`claims` (``redirect`` is its deprecated name).
        """
        redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)

        async def signed_in_access_token(request: Request) -> str:
            return await self._token(request, redirect, lambda client: client.getAccessToken(resource))

        return signed_in_access_token

    def organization_token(
        self,
        organization_id: Optional[str] = None,
        *,
        path_param: str = "organization_id",
        should_redirect: Optional[bool] = None,
        redirect: Optional[bool] = None,
    ) -> Callable[[Request], Awaitable[str]]:
        """A dependency giving the signed-in user's organization token.

        Args:
            organization_id: The organization; by default the route's path parameter
                ``path_param`` (``/orgs/{organization_id}/...``).
            path_param: The path parameter naming the organization.
            should_redirect: Send an anonymous user to sign in (``True``) or answer 401
                (``False``); by default a browser navigating is redirected.
            redirect: Deprecated name of ``should_redirect``.

        A refusal by Logto (not a member: ``LogtoOAuthError``) propagates to your handlers.
        """
        redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)

        async def signed_in_organization_token(request: Request) -> str:
            organization = organization_id or request.path_params.get(path_param)
            if not organization:
                raise HTTPException(404, "No such organization")
            return await self._token(
                request, redirect, lambda client: client.getOrganizationToken(str(organization))
            )

        return signed_in_organization_token


def _refuse_synchronous_redis(store: Any) -> None:
    """Refuse a back-channel store over a synchronous ``redis.Redis``: it would block the loop."""
    client = getattr(store, "redis", None)
    if client is None or type(client).__module__.startswith("redis.asyncio"):
        return
    try:
        import redis
        import redis.cluster
    except ImportError:  # pragma: no cover - no redis, no synchronous client either
        return
    if isinstance(client, (redis.Redis, redis.cluster.RedisCluster)):
        raise LogtoConfigError(
            f"{type(store).__name__} holds a synchronous redis.Redis client ({type(client).__name__}), "
            "which would block the event loop: give it an asyncio client, "
            "logto_rs.redis_storage.AsyncRedisClient(url) (with socket timeouts) or a redis.asyncio.Redis",
            "config.invalid",
        )


def _session_options(app: Any) -> Optional[dict[str, Any]]:
    """``SessionMiddleware``'s options, or ``None`` when the app's middleware is unknown."""
    for middleware in getattr(app, "user_middleware", None) or []:
        cls = getattr(middleware, "cls", None)
        if isinstance(cls, type) and issubclass(cls, SessionMiddleware):
            options: dict[str, Any] = getattr(middleware, "kwargs", None) or getattr(
                middleware, "options", {}
            )
            return options
    return None


def _https_only(app: Any) -> Optional[bool]:
    """``SessionMiddleware``'s ``https_only``, or ``None`` when the app's middleware is unknown."""
    options = _session_options(app)
    return None if options is None else bool(options.get("https_only", False))


OrganizationId = Union[str, Callable[[Request], Optional[str]], None]
"""The organization a route requires: an id, or a function of the request returning it (e.g.
``lambda request: request.path_params["org_id"]``)."""

_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="LogtoAccessToken",
    description="A Logto access token: `Authorization: Bearer <token>`.",
)


class _AuthorizationHeader(SecurityBase):
    """A route's bearer security scheme, named in the OpenAPI document like ``scheme``.

    Its value is the raw ``Authorization`` header, which the guard parses (once).
    """

    def __init__(self, scheme: HTTPBearer) -> None:
        self.model = scheme.model
        self.scheme_name = scheme.scheme_name

    async def __call__(self, request: Request) -> Optional[str]:
        return request.headers.get("authorization")


def require_access_token(
    verifier: AccessTokenVerifier,
    scopes: Optional[Scopes] = None,
    *,
    organization_id: OrganizationId = None,
    roles: Optional[Iterable[str]] = None,
    roles_claim: str = DEFAULT_ROLES_CLAIM,
    bearer: HTTPBearer = _BEARER,
) -> Callable[..., Awaitable[AccessTokenClaims]]:
    """A dependency that verifies the request's Logto access token and gives its claims.

    ``claims: AccessTokenClaims = Depends(require_access_token(verifier, ["read:products"]))``.
    Share one :class:`~logto_rs.AccessTokenVerifier` per process between the routes: it caches
    the tenant's keys.

    A request without a bearer token, or with a token that fails a check, is answered 401 (403
    for a missing scope, organization or role) with the RFC 6750 ``WWW-Authenticate`` header and
    the JSON body ``{"detail": {"error", "error_description"}}``; when Logto cannot be reached
    for the keys, 503 with ``Retry-After`` and ``{"detail": {"error":
    "temporarily_unavailable", …}}`` (the decisions of :mod:`logto_rs.guard`, the same in every
    framework). The route's OpenAPI operation names the ``bearer`` HTTP bearer security scheme.

    Args:
        verifier: The verifier (endpoint and audience).
        scopes: Scopes the token must have for this route (added to the verifier's own).
        organization_id: The organization the token must be for: an id, or a function of the
            request returning it. With a verifier without audience this also sets the audience
            (``urn:logto:organization:<id>``).
        roles: Roles the token must hold, all of them, in its ``roles_claim`` claim. Logto puts
            roles in access tokens through a custom JWT claims script (see the README).
        roles_claim: The claim holding the roles (a list of names).
        bearer: The ``HTTPBearer`` scheme shown in the OpenAPI document.

    """
    required_scopes = scope_list(scopes)
    required_roles = role_list(roles)
    authorization_header = _AuthorizationHeader(bearer)

    async def access_token_claims(
        request: Request,
        authorization: Annotated[Optional[str], Depends(authorization_header)] = None,
    ) -> AccessTokenClaims:
        result = await check_bearer_async(
            verifier,
            authorization,
            scopes=required_scopes,
            organization_id=organization_id(request) if callable(organization_id) else organization_id,
            roles=required_roles,
            roles_claim=roles_claim,
        )
        if isinstance(result, BearerRejection):
            raise HTTPException(status_code=result.status, detail=result.body, headers=result.headers)
        return result

    return access_token_claims
