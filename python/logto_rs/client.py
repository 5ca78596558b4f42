"""``LogtoClient`` and ``BlockingLogtoClient``: the official SDK's API over the Rust core.

``LogtoClient`` has the official SDK's camelCase methods with awaitable network calls;
``BlockingLogtoClient`` has the same methods for code without an event loop.

One client holds the configuration, the HTTP connection pool and the discovery/JWKS caches;
its storage holds one user's session. Porting from the official ``logto`` package means changing
the import.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from pydantic import ValidationError

from . import _driver
from ._core import CoreClient, Operation
from .config import LogtoConfig
from .errors import (
    LogtoNotAuthenticatedError,
    LogtoResponseError,
    LogtoStorageError,
    LogtoTokenValidationError,
)
from .machine import _BlockingTokenExchange, _TokenExchange
from .models import AccessTokenClaims, IdTokenClaims, LogtoContext, UserInfoResponse
from .storage import MemoryStorage, Storage

if TYPE_CHECKING:
    from .account import AccountClient, BlockingAccountClient
    from .OidcCore import OidcCore

__all__ = ["LogtoClient", "BlockingLogtoClient"]

DirectSignIn = Union[str, Mapping[str, str]]
"""``"social:google"``, or ``{"method": "social", "target": "google"}`` as in the official SDK."""


def _direct_sign_in(value: Optional[DirectSignIn]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    return f"{value['method']}:{value['target']}"


@functools.lru_cache(maxsize=1024)
def _id_token_claims(token: str) -> IdTokenClaims:
    """The claims of a stored ID token, parsed once per token (the per-request path)."""
    return _token_model(IdTokenClaims, CoreClient.decode_id_token_claims(token))


_Model = TypeVar("_Model", IdTokenClaims, AccessTokenClaims)


def _token_model(model: type[_Model], payload: str) -> _Model:
    """The model of a token's claims; claims that do not fit are a typed rejection (``claims``)."""
    try:
        return model.model_validate_json(payload)
    except (ValidationError, ValueError, RecursionError):
        message = f"the token's claims do not fit {model.__name__}"
        raise LogtoTokenValidationError(message, "token.claims", check="claims") from None


def _user_info(payload: Union[str, dict[str, Any]]) -> UserInfoResponse:
    """The userinfo model, from its JSON or its parsed object.

    An answer that does not fit it is an unexpected response.
    """
    try:
        if isinstance(payload, str):
            return UserInfoResponse.model_validate_json(payload)
        return UserInfoResponse.model_validate(payload)
    except (ValidationError, ValueError, RecursionError):
        raise LogtoResponseError(
            "the userinfo endpoint's answer does not fit UserInfoResponse", "response.unexpected"
        ) from None


def _logto_context(
    claims: Optional[IdTokenClaims],
    user_info: Optional[UserInfoResponse] = None,
    access_tokens: Optional[dict[str, str]] = None,
    organization_tokens: Optional[dict[str, str]] = None,
) -> LogtoContext:
    """A ``LogtoContext`` of parts already validated (``None`` claims: signed out)."""
    return LogtoContext.model_construct(
        is_authenticated=claims is not None,
        claims=claims,
        user_info=user_info,
        access_tokens=access_tokens or {},
        organization_tokens=organization_tokens or {},
    )


def _context_result(payload: str) -> LogtoContext:
    """The context the core's ``get_context`` operation gives, as JSON."""
    data = json.loads(payload)
    id_token = data["idToken"]
    if id_token is None:
        return _logto_context(None)
    info = data["userInfo"]
    return _logto_context(
        _id_token_claims(id_token),
        None if info is None else _user_info(info),
        data["accessTokens"],
        data["organizationTokens"],
    )


class _ClientBase:
    """What both facades share: the configuration, the core and the storage.

    Each call's ``Operation`` is built here once and run awaited or blocking by the facades.
    """

    __slots__ = ("config", "_storage", "_core", "_cached_token", "_sync_get")
    _cached_token: Optional[Callable[[Any, str, Optional[str]], Optional[str]]]
    _sync_get: Optional[Callable[[str], Any]]

    def __init__(self, config: LogtoConfig, storage: Optional[Storage] = None) -> None:
        self.config = config
        self._core = CoreClient(config)
        self._bind(storage if storage is not None else MemoryStorage())

    def _bind(self, storage: Storage) -> None:
        self._storage: Storage = storage
        # With a synchronous storage, the per-request reads (is the user signed in, the claims, a
        # cached access token) skip the operation machinery entirely: bound once, this is the
        # hot path of every request. A storage whose ``get`` returns an awaitable must be
        # ``async def`` to be recognised.
        get = getattr(storage, "get", None)
        sync_storage = get is not None and not _is_coroutine_function(get)
        self._sync_get = get if sync_storage else None
        self._cached_token = self._core.cached_access_token if sync_storage else None

    def _view(self, cls: type[_View], storage: Storage) -> _View:
        view = cls.__new__(cls)
        view.config, view._core = self.config, self._core
        view._bind(storage)
        return view

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.config.endpoint!r}, appId={self.config.appId!r})"

    def _sign_in(
        self,
        redirectUri: str,
        interactionMode: Optional[str],
        firstScreen: Optional[str],
        identifiers: Optional[list[str]],
        directSignIn: Optional[DirectSignIn],
        loginHint: Optional[str],
        prompt: Optional[Union[str, list[str]]],
        extraParams: Optional[Mapping[str, str]],
        postRedirectUri: Optional[str],
    ) -> Operation:
        return self._core.sign_in(
            self._storage,
            redirectUri,
            post_redirect_uri=postRedirectUri,
            interaction_mode=interactionMode,
            first_screen=firstScreen,
            identifiers=list(identifiers or []),
            direct_sign_in=_direct_sign_in(directSignIn),
            login_hint=loginHint,
            prompt=" ".join(prompt) if isinstance(prompt, list) else prompt,
            extra_params=[(str(k), str(v)) for k, v in (extraParams or {}).items()],
        )

    def _context(
        self, fetch_user_info: bool, access_tokens: bool, organization_tokens: bool
    ) -> Union[LogtoContext, Operation]:
        """``getContext`` as far as one read of the session takes it.

        The context, when the read holds every token wanted; else the operation that completes
        it from that read. With a synchronous storage the read is made here, in the caller's thread; with an
        asynchronous one the operation makes it.
        """
        get = self._sync_get
        snapshot = None
        if get is not None:
            id_token = _read(get, "idToken")
            if id_token is None:
                return _logto_context(None)
            stored_map = _read(get, "accessTokenMap")
            if not fetch_user_info:
                claims = _id_token_claims(id_token)
                found = self._core.cached_context(
                    stored_map, claims.organizations or [], access_tokens, organization_tokens
                )
                if found is not None:
                    return _logto_context(claims, None, dict(found[0]), dict(found[1]))
            snapshot = (id_token, stored_map)
        return self._core.get_context(
            self._storage,
            snapshot,
            fetch_user_info=fetch_user_info,
            access_tokens=access_tokens,
            organization_tokens=organization_tokens,
        )

    def _cached_access_token(self, resource: str, organizationId: Optional[str]) -> Optional[str]:
        """The fresh cached token without the operation machinery (synchronous storage only)."""
        cached_token = self._cached_token
        return None if cached_token is None else cached_token(self._storage, resource, organizationId)

    def isAuthenticated(self) -> bool:
        """Whether a user is signed in (an ID token is stored).

        It checks presence only, as the official SDK does: this runs on every request.
        """
        if self._sync_get is not None:
            try:
                return self._storage.get("idToken") is not None
            except Exception as error:
                raise _storage_error("idToken") from error
        result: bool = _driver.run_blocking(self._core.is_authenticated(self._storage))
        return result

    def getIdToken(self) -> Optional[str]:
        """The stored ID token, or ``None``."""
        get = self._sync_get
        if get is not None:
            return _read(get, "idToken")
        token: Optional[str] = _driver.run_blocking(self._core.get_id_token(self._storage))
        return token

    def getIdTokenClaims(self) -> IdTokenClaims:
        """The claims of the stored ID token.

        The claims of one ID token are parsed once; while the token stays the same, the same
        model instance is returned (treat it as read-only).

        Raises:
            LogtoNotAuthenticatedError: no user is signed in.

        """
        get = self._sync_get
        token = _read(get, "idToken") if get is not None else self.getIdToken()
        if token is None:
            raise LogtoNotAuthenticatedError("not authenticated: no ID token is stored", "not_authenticated")
        return _id_token_claims(token)

    def getRefreshToken(self) -> Optional[str]:
        """The stored refresh token, or ``None``."""
        get = self._sync_get
        if get is not None:
            return _read(get, "refreshToken")
        token: Optional[str] = _driver.run_blocking(self._core.get_refresh_token(self._storage))
        return token

    # The awaitable forms of the official SDK's synchronous getters, for a storage that is
    # ``async def`` (or any storage) inside a running event loop. The official names stay
    # synchronous, for porting; these take the ``Async`` suffix.

    async def isAuthenticatedAsync(self) -> bool:
        """Awaitable :meth:`isAuthenticated`: works with any storage, sync or ``async def``."""
        result: bool = await _driver.run(self._core.is_authenticated(self._storage))
        return result

    async def getIdTokenAsync(self) -> Optional[str]:
        """Awaitable :meth:`getIdToken`."""
        token: Optional[str] = await _driver.run(self._core.get_id_token(self._storage))
        return token

    async def getIdTokenClaimsAsync(self) -> IdTokenClaims:
        """Awaitable :meth:`getIdTokenClaims`.

        Raises:
            LogtoNotAuthenticatedError: no user is signed in.

        """
        token = await self.getIdTokenAsync()
        if token is None:
            raise LogtoNotAuthenticatedError("not authenticated: no ID token is stored", "not_authenticated")
        return _id_token_claims(token)

    async def getRefreshTokenAsync(self) -> Optional[str]:
        """Awaitable :meth:`getRefreshToken`."""
        token: Optional[str] = await _driver.run(self._core.get_refresh_token(self._storage))
        return token

    def _is_fresh(self, id_token: str) -> bool:
        """Whether a stored ID token has not expired (beyond ``clockTolerance``)."""
        return _id_token_claims(id_token).exp + self.config.clockTolerance > time.time()


def _is_coroutine_function(function: Any) -> bool:
    """``inspect.iscoroutinefunction`` for plain and bound methods, without importing inspect."""
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


_CO_COROUTINE = 0x80
"""``inspect.CO_COROUTINE``: the code flag of an ``async def`` function."""


def _storage_error(key: str) -> LogtoStorageError:
    return LogtoStorageError(f"storage get({key!r}) failed", "storage.error")


def _read(get: Callable[[str], Any], key: str) -> Optional[str]:
    """``get(key)`` as text (``bytes`` are decoded), a failure as the core reports it."""
    try:
        value = get(key)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, bytes):
            return value.decode("utf-8")
    except Exception as error:
        raise _storage_error(key) from error
    raise _storage_error(key) from TypeError("Storage.get must return str, bytes or None")


_View = TypeVar("_View", bound=_ClientBase)


class LogtoClient(_ClientBase, _TokenExchange):
    """The Logto client, API-compatible with the official ``logto`` package.

    Network methods are coroutines; ``isAuthenticated``, ``getIdToken``, ``getIdTokenClaims``
    and ``getRefreshToken`` are plain methods, as in the official SDK.

    Args:
        config: The configuration.
        storage: The session store of the user this client acts for. Defaults to a new
            :class:`MemoryStorage` per client.

    """

    @property
    def blocking(self) -> BlockingLogtoClient:
        """The same client (configuration, caches, storage) with blocking methods."""
        return self._view(BlockingLogtoClient, self._storage)

    @property
    def account(self) -> AccountClient:
        """The signed-in user's own account, through Logto's Account API (``/api/my-account``).

        Called with this session's resource-less access token; see :mod:`logto_rs.account`.
        """
        from .account import AccountClient

        return AccountClient(self)

    def withStorage(self, storage: Storage) -> LogtoClient:
        """The same client bound to another session's storage: a per-request view.

        The view shares the configuration, the connection pool, the discovery and key caches
        and the refresh coordination; only the storage differs. It costs microseconds and makes
        no request, so a server builds one per request (frameworks without Flask's
        request-bound session), and a script one per user it acts for.
        """
        return self._view(LogtoClient, storage)

    async def _signed_in(self) -> bool:
        """Whether a user is signed in with an unexpired ID token; an expired one is renewed.

        The web integrations' guards call it on every request: a fresh ID token costs no
        request. An expired one is renewed by a refresh (its re-issued ID token verified);
        ``False`` when it cannot be (sign in again).

        Raises:
            LogtoInvalidGrantError: the provider rejected the refresh token (session cleared).

        """
        token = await self.getIdTokenAsync()
        if token is None:
            return False
        if self._is_fresh(token):
            return True
        result: bool = await _driver.run(self._core.signed_in_with_fresh_id_token(self._storage))
        return result

    async def signIn(
        self,
        redirectUri: str,
        interactionMode: Optional[str] = None,
        *,
        firstScreen: Optional[str] = None,
        identifiers: Optional[list[str]] = None,
        directSignIn: Optional[DirectSignIn] = None,
        loginHint: Optional[str] = None,
        prompt: Optional[Union[str, list[str]]] = None,
        extraParams: Optional[Mapping[str, str]] = None,
        postRedirectUri: Optional[str] = None,
    ) -> str:
        """Start a sign-in and return the URL to redirect the user to.

        Stores a new sign-in session (PKCE verifier, state, nonce) and removes every token of the
        previous user.

        Args:
            redirectUri: Where the provider sends the user back (registered for the app).
            interactionMode: ``signIn`` or ``signUp`` (ignored when ``firstScreen`` is set).
            firstScreen: Logto's first screen, e.g. ``identifier:register``.
            identifiers: With ``firstScreen=identifier:*``: ``email``, ``phone``, ``username``.
            directSignIn: ``social:<target>``/``sso:<connector id>``, or a mapping with
                ``method`` and ``target``.
            loginHint: Pre-fills the identifier.
            prompt: Overrides the configured prompt for this sign-in.
            extraParams: More authorization parameters (``organization_id``, ``ui_locales``…).
            postRedirectUri: Where the application wants to go after the callback.

        Raises:
            LogtoConfigError: an invalid option.

        """
        url: str = await _driver.run(
            self._sign_in(
                redirectUri,
                interactionMode,
                firstScreen,
                identifiers,
                directSignIn,
                loginHint,
                prompt,
                extraParams,
                postRedirectUri,
            )
        )
        return url

    async def handleSignInCallback(self, callbackUri: str) -> Optional[str]:
        """Complete the sign-in from the URL the provider redirected to.

        Validates the URL (redirect URI, state, error, code), exchanges the code, verifies the
        ID token, then stores the tokens; on any error the storage is left unchanged.

        Returns:
            The ``postRedirectUri`` given to :meth:`signIn`, or ``None`` when none was given. The
            official SDK returns ``None``; code written for it ignores the value.

        Raises:
            LogtoCallbackError: no sign-in session, another redirect URI, missing/forged state.
            LogtoAuthorizationError: the provider returned an error such as ``access_denied``.
            LogtoTokenValidationError: the ID token failed a check (see ``check``).
            LogtoOAuthError, LogtoNetworkError, LogtoResponseError: the token request failed.

        """
        post_redirect_uri: Optional[str] = await _driver.run(
            self._core.handle_sign_in_callback(self._storage, callbackUri)
        )
        return post_redirect_uri

    async def signOut(self, postLogoutRedirectUri: Optional[str] = None) -> str:
        """Clear the local session, revoke the refresh token, and return the end-session URL."""
        url: str = await _driver.run(self._core.sign_out(self._storage, postLogoutRedirectUri))
        return url

    async def getAccessToken(self, resource: str = "", organizationId: Optional[str] = None) -> Optional[str]:
        """Return an access token for ``resource``, or ``None`` when no user is signed in.

        A cached token with more than ``accessTokenMargin`` seconds of life is returned as is;
        otherwise the refresh token is used. Concurrent calls (tasks or threads) share one
        refresh, so a rotated refresh token is never sent twice.

        Args:
            resource: The API resource indicator; ``""`` for the token the userinfo endpoint takes.
            organizationId: With a resource, an organization-scoped resource token.

        Raises:
            LogtoInvalidGrantError: the refresh token was rejected; the session's tokens were
                cleared and the user must sign in again.
        """
        cached_token = self._cached_token
        if cached_token is not None:
            cached = cached_token(self._storage, resource, organizationId)
            if cached is not None:
                return cached
        token: Optional[str] = await _driver.run(
            self._core.get_access_token(self._storage, resource, organizationId)
        )
        return token

    async def getOrganizationToken(self, organizationId: str) -> Optional[str]:
        """Return an organization token (``aud`` ``urn:logto:organization:<id>``), or ``None``.

        Raises:
            LogtoConfigError: the ``urn:logto:scope:organizations`` scope is not configured.
            LogtoOAuthError: the user is not a member of the organization (``access_denied``, 403).
        """
        return await self.getAccessToken("", organizationId)

    async def getAccessTokenClaims(
        self, resource: str = "", organizationId: Optional[str] = None, *, verify: bool = False
    ) -> AccessTokenClaims:
        """Return the claims of :meth:`getAccessToken`'s token.

        With ``verify``, the signature, issuer, audience and expiry are checked against the
        provider's keys first.

        Raises:
            LogtoNotAuthenticatedError: no user is signed in.
            LogtoTokenValidationError: the token is opaque (``resource=""``) or fails a check.
        """
        claims = await _driver.run(
            self._core.get_access_token_claims(self._storage, resource, organizationId, verify)
        )
        return _token_model(AccessTokenClaims, claims)

    async def getOrganizationTokenClaims(
        self, organizationId: str, *, verify: bool = False
    ) -> AccessTokenClaims:
        """Return the claims of :meth:`getOrganizationToken`'s token (verified with ``verify``)."""
        return await self.getAccessTokenClaims("", organizationId, verify=verify)

    async def fetchUserInfo(self) -> UserInfoResponse:
        """Fetch the signed-in user's userinfo, with every Logto claim kept.

        Raises:
            LogtoNotAuthenticatedError: no user is signed in.
            LogtoTokenValidationError: its ``sub`` is not the ID token's (``check == "sub"``).
        """
        info = await _driver.run(self._core.fetch_user_info(self._storage))
        return _user_info(info)

    async def getContext(
        self, *, fetch_user_info: bool = False, access_tokens: bool = False, organization_tokens: bool = False
    ) -> LogtoContext:
        """The signed-in user's context in one call, as ``@logto/node``'s ``getContext``.

        The session is read once: the ID token's claims, and the tokens asked for that are
        still fresh, come from that read; a missing or expiring one is refreshed (once, shared
        with concurrent callers as :meth:`getAccessToken` does). Nobody signed in gives
        ``is_authenticated=False`` and empty fields, without an error.

        It differs from ``@logto/node``'s: ``access_tokens`` gives a token for every resource of
        ``LogtoConfig.resources`` (there, one token for one ``resource``, and its ``scopes``);
        a refresh token the provider rejects (the session is cleared) gives the signed-out
        context, as there, but any other failure (an outage, an organization the user left)
        raises instead of reading as signed out. The keywords are snake_case.

        Args:
            fetch_user_info: Also fetch the userinfo (a request every call).
            access_tokens: An access token per resource of ``LogtoConfig.resources`` (but
                ``urn:logto:resource:organizations``, Logto's, which issues the organization
                tokens).
            organization_tokens: An organization token per organization of the ID token's
                ``organizations`` claim (with the ``urn:logto:scope:organizations`` scope).

        Raises:
            LogtoOAuthError: the provider refused a token (``access_denied`` for an
                organization the user no longer belongs to).
            LogtoNetworkError, LogtoResponseError: the provider could not be reached or answered
                unexpectedly.
            LogtoStorageError: the storage failed.

        """
        context = self._context(fetch_user_info, access_tokens, organization_tokens)
        if isinstance(context, LogtoContext):
            return context
        return _context_result(await _driver.run(context))

    async def clearAccessToken(self) -> None:
        """Remove every cached access token (the refresh token stays)."""
        await _driver.run(self._core.clear_access_token(self._storage))

    async def clearAllTokens(self) -> None:
        """Remove the ID token, the refresh token and every access token."""
        await _driver.run(self._core.clear_all_tokens(self._storage))

    async def getOidcCore(self) -> OidcCore:
        """The official SDK's ``OidcCore`` for this tenant (see :mod:`logto_rs.OidcCore`)."""
        from .OidcCore import oidc_core_for

        return await oidc_core_for(self.config.endpoint, self.config.requestTimeout)


class BlockingLogtoClient(_ClientBase, _BlockingTokenExchange):
    """:class:`LogtoClient` with blocking network methods, for scripts and sync views.

    It runs on the same core; while it waits for the provider it releases the GIL. It works with
    or without an event loop running in the calling thread (as long as the storage is not
    asynchronous).
    """

    def withStorage(self, storage: Storage) -> BlockingLogtoClient:
        """The same client bound to another session's storage (see :meth:`LogtoClient.withStorage`)."""
        return self._view(BlockingLogtoClient, storage)

    @property
    def account(self) -> BlockingAccountClient:
        """:attr:`LogtoClient.account` with blocking methods."""
        from .account import BlockingAccountClient

        return BlockingAccountClient(self)

    def _signed_in(self) -> bool:
        """Blocking :meth:`LogtoClient._signed_in`."""
        token = self.getIdToken()
        if token is None:
            return False
        if self._is_fresh(token):
            return True
        result: bool = _driver.run_blocking(self._core.signed_in_with_fresh_id_token(self._storage))
        return result

    def signIn(
        self,
        redirectUri: str,
        interactionMode: Optional[str] = None,
        *,
        firstScreen: Optional[str] = None,
        identifiers: Optional[list[str]] = None,
        directSignIn: Optional[DirectSignIn] = None,
        loginHint: Optional[str] = None,
        prompt: Optional[Union[str, list[str]]] = None,
        extraParams: Optional[Mapping[str, str]] = None,
        postRedirectUri: Optional[str] = None,
    ) -> str:
        """Blocking :meth:`LogtoClient.signIn`."""
        url: str = _driver.run_blocking(
            self._sign_in(
                redirectUri,
                interactionMode,
                firstScreen,
                identifiers,
                directSignIn,
                loginHint,
                prompt,
                extraParams,
                postRedirectUri,
            )
        )
        return url

    def handleSignInCallback(self, callbackUri: str) -> Optional[str]:
        """Blocking :meth:`LogtoClient.handleSignInCallback`: the ``postRedirectUri``, or ``None``."""
        post_redirect_uri: Optional[str] = _driver.run_blocking(
            self._core.handle_sign_in_callback(self._storage, callbackUri)
        )
        return post_redirect_uri

    def signOut(self, postLogoutRedirectUri: Optional[str] = None) -> str:
        """Blocking :meth:`LogtoClient.signOut`."""
        url: str = _driver.run_blocking(self._core.sign_out(self._storage, postLogoutRedirectUri))
        return url

    def getAccessToken(self, resource: str = "", organizationId: Optional[str] = None) -> Optional[str]:
        """Blocking :meth:`LogtoClient.getAccessToken`."""
        cached = self._cached_access_token(resource, organizationId)
        if cached is not None:
            return cached
        token: Optional[str] = _driver.run_blocking(
            self._core.get_access_token(self._storage, resource, organizationId)
        )
        return token

    def getOrganizationToken(self, organizationId: str) -> Optional[str]:
        """Blocking :meth:`LogtoClient.getOrganizationToken`."""
        return self.getAccessToken("", organizationId)

    def getAccessTokenClaims(
        self, resource: str = "", organizationId: Optional[str] = None, *, verify: bool = False
    ) -> AccessTokenClaims:
        """Blocking :meth:`LogtoClient.getAccessTokenClaims`."""
        claims = _driver.run_blocking(
            self._core.get_access_token_claims(self._storage, resource, organizationId, verify)
        )
        return _token_model(AccessTokenClaims, claims)

    def getOrganizationTokenClaims(self, organizationId: str, *, verify: bool = False) -> AccessTokenClaims:
        """Blocking :meth:`LogtoClient.getOrganizationTokenClaims`."""
        return self.getAccessTokenClaims("", organizationId, verify=verify)

    def fetchUserInfo(self) -> UserInfoResponse:
        """Blocking :meth:`LogtoClient.fetchUserInfo`."""
        return _user_info(_driver.run_blocking(self._core.fetch_user_info(self._storage)))

    def getContext(
        self, *, fetch_user_info: bool = False, access_tokens: bool = False, organization_tokens: bool = False
    ) -> LogtoContext:
        """Blocking :meth:`LogtoClient.getContext`."""
        context = self._context(fetch_user_info, access_tokens, organization_tokens)
        if isinstance(context, LogtoContext):
            return context
        return _context_result(_driver.run_blocking(context))

    def clearAccessToken(self) -> None:
        """Blocking :meth:`LogtoClient.clearAccessToken`."""
        _driver.run_blocking(self._core.clear_access_token(self._storage))

    def clearAllTokens(self) -> None:
        """Blocking :meth:`LogtoClient.clearAllTokens`."""
        _driver.run_blocking(self._core.clear_all_tokens(self._storage))
