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
import re
import warnings
from collections.abc import Awaitable, Iterable
from datetime import timedelta
from html import escape
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, Protocol, Union

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPBearer
from fastapi.security.base import SecurityBase
from starlette.datastructures import URL
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

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
    LogtoCallbackError,
    LogtoConfigError,
    LogtoException,
    LogtoInvalidGrantError,
    LogtoNotAuthenticatedError,
    LogtoStorageError,
)
from .guard import BearerRejection, check_bearer_async
from .models import AccessTokenClaims, IdTokenClaims, UserInfoResponse
from .redis_storage import SESSION_KEYS, AsyncRedisClient, AsyncRedisStorage
from .redis_storage import SOCKET_TIMEOUTS as SOCKET_TIMEOUTS
from .sessions.starlette import COOKIE_SIZE_SCOPE_KEY
from .storage import MemoryStorage, Storage
from .verifier import DEFAULT_ROLES_CLAIM, AccessTokenVerifier, Scopes, role_list, scope_list
from .web import (
    COOKIE_LIMIT,
    insecure_cookie_message,
    is_refusal,
    is_same_origin,
    safe_next,
    wants_redirect,
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

NEXT_KEY = "logto_next"
"""Session key of the path the user was going to before signing in."""

CLIENT_STATE = "logto_client"
"""``request.state`` attribute of the request's client view."""

REDIRECT_STATE = "logto_redirect"
"""``request.state`` attribute: whether the route asked to redirect an anonymous user."""


class LogtoInsecureCookieWarning(UserWarning):
    """The session cookie is not ``Secure`` (``https_only``) on a host other than loopback."""


class LogtoSessionTooLargeWarning(UserWarning):
    """The session cookie grew past what a browser keeps; the user would be signed out."""


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


class _CookieSession(Storage):
    """One request's cookie session (see :class:`CookieSessionStorage`)."""

    def __init__(self, owner: "CookieSessionStorage", request: Request) -> None:
        self.owner = owner
        self.request = request

    def get(self, key: str) -> Optional[str]:
        value = _session(self.request).get(self.owner.prefix + key)
        return value if isinstance(value, str) else None

    def set(self, key: str, value: Optional[str]) -> None:
        if value is None:
            self.delete(key)
            return
        session = _session(self.request)
        session[self.owner.prefix + key] = value
        self.owner.check_size(self.request, session)

    def delete(self, key: str) -> None:
        _session(self.request).pop(self.owner.prefix + key, None)


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

    def check_size(self, request: Request, session: dict[str, Any]) -> None:
        """Warn (or raise) when the session's cookie would pass ``max_cookie_bytes``.

        An encrypted session middleware (:mod:`logto_rs.sessions.starlette`) measures its own
        cookie; otherwise the cookie is ``SessionMiddleware``'s.
        """
        size = request.scope.get(COOKIE_SIZE_SCOPE_KEY, self.cookie_size)(session)
        if size <= self.max_cookie_bytes:
            return
        message = (
            f"the session cookie would be {size} bytes, more than the {self.max_cookie_bytes} "
            "a browser keeps: the browser would drop it and sign the user out. Keep the tokens "
            "server-side with logto_rs.fastapi.RedisSessionStorage instead of CookieSessionStorage."
        )
        if self.strict:
            raise LogtoException(message, "storage.cookie_too_large")
        if not getattr(request.state, "logto_cookie_warned", False):
            request.state.logto_cookie_warned = True
            logger.warning(message)
            warnings.warn(message, LogtoSessionTooLargeWarning, stacklevel=2)


class StarletteSessionId:
    """Keeps the Redis session id in Starlette's cookie session, under ``session_key``."""

    def __init__(self, request: Request, session_key: str = "logto_sid") -> None:
        self.request = request
        self.session_key = session_key

    def get(self) -> Optional[str]:
        """The request's session id, or ``None``."""
        sid = _session(self.request).get(self.session_key)
        return sid if isinstance(sid, str) else None

    def set(self, sid: str) -> None:
        """Make ``sid`` the session id of the cookie sent back."""
        _session(self.request)[self.session_key] = sid

    def clear(self) -> None:
        """Forget the session id."""
        _session(self.request).pop(self.session_key, None)


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

_CODE = re.compile(r"[a-z0-9_.]{1,64}")


class LogtoFastAPI:
    """Sign-in routes, per-request clients and dependencies for a FastAPI (or Starlette) app.

    ``logto.init_app(app)`` includes :attr:`router` (``GET sign_in_path?next=/path``,
    ``GET callback_path``, ``GET``/``POST sign_out_path``) and the exception handlers that turn
    an ended session (:class:`~logto_rs.LogtoInvalidGrantError`,
    :class:`~logto_rs.LogtoNotAuthenticatedError`) raised anywhere into a 401 or a redirect to
    sign in. The app needs Starlette's ``SessionMiddleware``.

    :attr:`client` is the app's one client, bound to no user; routes use it through
    :meth:`client_for`, which binds it to the request's session.

    Behind a reverse proxy, run uvicorn with ``--proxy-headers --forwarded-allow-ips=<proxy>``
    and have the proxy pass the ``Host`` header, or set ``redirect_uri`` and
    ``post_sign_out_redirect_uri``.

    Args:
        config: The Logto configuration.
        storage: Where sessions live; defaults to :class:`CookieSessionStorage`.
        sign_in_path: Route that starts a sign-in.
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
        self._cookie_checked = False
        self._routes = [
            (prefix + sign_in_path, self.sign_in, ["GET"], "logto_sign_in"),
            (prefix + callback_path, self.callback, ["GET"], "logto_callback"),
            (prefix + sign_out_path, self.sign_out, ["GET", "POST"], "logto_sign_out"),
        ]
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
        """Handlers answering an ended session (401 or a redirect) or a store out of reach (503).

        Never a 500.
        """
        return {
            LogtoInvalidGrantError: self._session_ended,
            LogtoNotAuthenticatedError: self._session_ended,
            LogtoStorageError: self._storage_unavailable,
        }

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
            backchannel = self.backchannel
            if isinstance(self.storage, CookieSessionStorage) and backchannel is not None:
                if await backchannel.is_ended_async(_session(request), client.getIdToken()):
                    for key in SESSION_KEYS:
                        storage.delete(key)
            setattr(request.state, CLIENT_STATE, client)
        return client

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

        No CSRF token (the caller is Logto; the signed token is the proof): 200 when done, 400
        ``{"error": ...}`` for a bad token, 413 for a body over 64 KiB (read no further), always
        ``Cache-Control: no-store``.
        """
        assert self.backchannel is not None
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
        answer = await self.backchannel.respond_to_body_async(body)
        if answer.status != 200:
            logger.warning("refused a back-channel logout: %s", answer.body.get("error_description", ""))
        return Response(answer.json(), status_code=answer.status, headers=answer.headers)

    def _check_cookie_security(self, request: Request) -> None:
        if self._cookie_checked:
            return
        self._cookie_checked = True
        message = insecure_cookie_message(request.url.netloc)
        if message is None or _https_only(request.app) is not False:
            return  # loopback, a Secure cookie, or a session middleware this cannot inspect
        message += " (Starlette: SessionMiddleware(..., https_only=True))"
        logger.warning(message)
        warnings.warn(message, LogtoInsecureCookieWarning, stacklevel=2)

    # -- routes -------------------------------------------------------------------------------

    def callback_url(self, request: Request) -> str:
        """The redirect URI sent to Logto: ``redirect_uri``, else the callback route's URL."""
        return self.redirect_uri or str(request.url_for("logto_callback"))

    def post_sign_out_url(self, request: Request) -> str:
        """Where Logto sends the user after signing out."""
        if self.post_sign_out_redirect_uri:
            return self.post_sign_out_redirect_uri
        return str(request.base_url).rstrip("/") + self.post_sign_out_path

    async def sign_in(self, request: Request) -> Response:
        """``GET sign_in_path``: remember ``?next=``, start a sign-in, redirect to Logto."""
        client = await self._view(request)
        _session(request)[NEXT_KEY] = safe_next(request.query_params.get("next"))
        url = await client.signIn(self.callback_url(request), **self.sign_in_options)
        return RedirectResponse(url, status_code=302)

    async def callback(self, request: Request) -> Response:
        """``GET callback_path``: complete the sign-in, then return to where the user was going."""
        client = await self._view(request)
        try:
            await client.handleSignInCallback(self._request_url(request))
        except LogtoException as error:
            return await self.error_response(request, error)
        if self.backchannel is not None:
            session_id = None
            if isinstance(self.storage, RedisSessionStorage):
                session_id = StarletteSessionId(request, self.storage.session_key).get()
            id_token = await client.getIdTokenAsync()
            await self.backchannel.signed_in_async(_session(request), id_token, session_id)
        return RedirectResponse(safe_next(_session(request).pop(NEXT_KEY, None)), status_code=302)

    def _request_url(self, request: Request) -> str:
        """The callback URL as the provider redirected to it (the configured one behind proxies)."""
        if self.redirect_uri is None:
            return str(request.url)
        url = URL(self.redirect_uri)
        return str(url.replace(query=request.url.query)) if request.url.query else str(url)

    async def sign_out(self, request: Request) -> Response:
        """``POST sign_out_path``: clear the session, revoke, redirect to Logto's end-session.

        Only a same-origin ``POST`` signs out (``Sec-Fetch-Site``, else ``Origin``, else
        ``Referer``; a request with none of them is refused), so a link or an image on another
        site cannot sign the user out. ``GET`` answers :meth:`sign_out_page`.
        """
        if request.method != "POST":
            return self.sign_out_page(request)
        headers = request.headers
        host_url = f"{request.url.scheme}://{request.url.netloc}"
        if not is_same_origin(
            host_url=host_url,
            sec_fetch_site=headers.get("sec-fetch-site"),
            origin=headers.get("origin"),
            referer=headers.get("referer"),
        ):
            logger.warning("refused a cross-site sign-out request")
            return PlainTextResponse("Cross-site sign-out refused.", status_code=403)
        client = await self._view(request)
        id_token = await client.getIdTokenAsync()
        url = await client.signOut(self.post_sign_out_url(request))
        session = _session(request)
        session.pop(NEXT_KEY, None)
        ids = None
        if isinstance(self.storage, RedisSessionStorage):
            ids = StarletteSessionId(request, self.storage.session_key)
        if self.backchannel is not None:
            session_id = ids.get() if ids is not None else None
            await self.backchannel.signed_out_async(session, id_token, session_id)
        if ids is not None:
            ids.clear()
        return RedirectResponse(url, status_code=303)

    def sign_out_page(self, request: Request) -> Response:
        """The page ``GET sign_out_path`` answers: a form that posts the sign-out."""
        action = escape(request.url.path)
        return HTMLResponse(
            "<!doctype html><title>Sign out</title>"
            f'<form method="post" action="{action}"><button type="submit">Sign out</button></form>'
        )

    async def error_response(self, request: Request, error: LogtoException) -> Response:
        """The page shown when a sign-in callback fails; override it to render your own.

        Callback problems (forged state, a replay, ``access_denied``) answer 400; a failing
        provider answers 502. The page says what happened in fixed words and shows the error
        code: the query string's text (``error_description``, for one) is attacker-controlled
        and never shown. The error is logged.
        """
        logger.warning("sign-in callback failed: %s (%s)", error.code, error)
        if isinstance(error, LogtoCallbackError):
            status, what = 400, "The sign-in was cancelled, has expired, or did not start here."
        else:
            status, what = 502, "Logto could not complete the sign-in. Try again later."
        code = error.code if error.code and _CODE.fullmatch(error.code) else "error"
        sign_in = escape(str(request.url_for("logto_sign_in").path))
        return HTMLResponse(
            "<!doctype html><title>Sign-in failed</title><h1>Sign-in failed</h1>"
            f"<p>{what}</p><p><code>{code}</code></p>"
            f'<p><a href="{sign_in}">Try again</a></p>',
            status_code=status,
        )

    # -- anonymous users and ended sessions ---------------------------------------------------

    def sign_in_url(self, request: Request) -> str:
        """The sign-in route's URL returning to the current request's path."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return str(request.url_for("logto_sign_in").include_query_params(next=target))

    def unauthenticated(self, request: Request, redirect: bool) -> HTTPException:
        """The exception answering a request that needs a signed-in user: 303 to sign in, or 401."""
        if redirect:
            return HTTPException(303, "Sign-in required", headers={"Location": self.sign_in_url(request)})
        return HTTPException(401, "Not authenticated")

    async def _storage_unavailable(self, request: Request, exc: Exception) -> Response:
        if isinstance(exc, LogtoStorageError) and is_refusal(exc):
            raise exc  # the SDK's own refusal (a strict cookie storage): a bug, not an outage
        code = exc.code if isinstance(exc, LogtoException) else "storage.error"
        logger.warning("the session store failed: %s", code)
        return JSONResponse(
            {"detail": "The session store is unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )

    async def _session_ended(self, request: Request, exc: Exception) -> Response:
        redirect = getattr(request.state, REDIRECT_STATE, None)
        if redirect is None:
            accept = request.headers.get("accept", "")
            redirect = wants_redirect(request.method, "text/html" in accept)
        code = exc.code if isinstance(exc, LogtoException) else type(exc).__name__
        logger.info("session ended in a route: %s", code)
        answer = self.unauthenticated(request, bool(redirect))
        if answer.status_code == 303:
            return RedirectResponse(answer.headers["Location"] if answer.headers else "/", status_code=303)
        return JSONResponse({"detail": answer.detail}, status_code=answer.status_code)

    # -- dependencies -------------------------------------------------------------------------

    async def _signed_in(self, request: Request, redirect: bool) -> LogtoClient:
        setattr(request.state, REDIRECT_STATE, redirect)
        client = await self._view(request)
        try:
            if await client._signed_in():
                return client
        except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
            pass
        raise self.unauthenticated(request, redirect)

    def claims(self, *, redirect: bool = False) -> Callable[[Request], Awaitable[IdTokenClaims]]:
        """A dependency giving the signed-in user's ID token claims.

        Args:
            redirect: Send an anonymous user to sign in (and back) with a 303, instead of 401
                ``{"detail": "Not authenticated"}``.

        """

        async def signed_in_claims(request: Request) -> IdTokenClaims:
            client = await self._signed_in(request, redirect)
            try:
                return await client.getIdTokenClaimsAsync()
            except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                raise self.unauthenticated(request, redirect) from None

        return signed_in_claims

    def userinfo(self, *, redirect: bool = False) -> Callable[[Request], Awaitable[UserInfoResponse]]:
        """A dependency giving the signed-in user's userinfo, fetched from Logto at each request."""

        async def signed_in_userinfo(request: Request) -> UserInfoResponse:
            client = await self._signed_in(request, redirect)
            try:
                return await client.fetchUserInfo()
            except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                raise self.unauthenticated(request, redirect) from None

        return signed_in_userinfo

    def access_token(
        self, resource: str = "", *, redirect: bool = False
    ) -> Callable[[Request], Awaitable[str]]:
        """A dependency giving the signed-in user's access token for ``resource`` (refreshed when due)."""

        async def signed_in_access_token(request: Request) -> str:
            client = await self._signed_in(request, redirect)
            try:
                token = await client.getAccessToken(resource)
            except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                token = None
            if not token:
                raise self.unauthenticated(request, redirect)
            return token

        return signed_in_access_token

    def organization_token(
        self,
        organization_id: Optional[str] = None,
        *,
        path_param: str = "organization_id",
        redirect: bool = False,
    ) -> Callable[[Request], Awaitable[str]]:
        """A dependency giving the signed-in user's organization token.

        Args:
            organization_id: The organization; by default the route's path parameter
                ``path_param`` (``/orgs/{organization_id}/...``).
            path_param: The path parameter naming the organization.
            redirect: Send an anonymous user to sign in instead of answering 401.

        A refusal by Logto (not a member: ``LogtoOAuthError``) propagates to your handlers.
        """

        async def signed_in_organization_token(request: Request) -> str:
            organization = organization_id or request.path_params.get(path_param)
            if not organization:
                raise HTTPException(404, "No such organization")
            client = await self._signed_in(request, redirect)
            try:
                token = await client.getOrganizationToken(str(organization))
            except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
                token = None
            if not token:
                raise self.unauthenticated(request, redirect)
            return token

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
