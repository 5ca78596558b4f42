"""Tokens without a user session, over the Rust core.

- :class:`LogtoM2MClient`: a machine-to-machine app's ``client_credentials`` tokens for an API
  resource, an organization or Logto's Management API, and token exchange: personal access
  tokens, a user's access token delegated to another API, impersonation.
- :class:`ManagementApi`: a user's personal access tokens, and impersonation subject tokens,
  through the Management API (shortcuts over :class:`logto_rs.management.ManagementClient`,
  which has every operation).
- :func:`exchange_personal_access_token`: a one-shot exchange for scripts.

Every network method is a coroutine; the ``blocking`` twins have the same methods for code
without an event loop (they release the GIL while they wait). Tokens are cached in memory per
client until ``accessTokenMargin`` seconds before they expire, and concurrent callers share one
request. Exchanged tokens are cached under a hash of the subject token, never the token; an
impersonation is never cached (its subject token is single-use).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Protocol, TypeVar, Union

from pydantic import BaseModel, Field, model_validator

from . import _driver
from ._core import CoreClient, MachineClient, Operation
from .config import LogtoConfig, SecretSafeModel
from .errors import LogtoConfigError, LogtoResponseError
from .models import MachineToken, PersonalAccessToken, SubjectToken, TokenExchangeResult

if TYPE_CHECKING:
    from .management import BlockingManagementClient, ManagementClient
    from .management._transport import ManagementTransport

_Generated = TypeVar("_Generated", bound="ManagementTransport")

__all__ = [
    "LogtoM2MConfig",
    "LogtoM2MClient",
    "BlockingLogtoM2MClient",
    "ManagementApi",
    "BlockingManagementApi",
    "Scopes",
    "ExpiresAt",
    "SubjectTokenType",
    "exchange_personal_access_token",
    "exchange_personal_access_token_blocking",
]

Scopes = Union[str, Sequence[str]]
"""Scopes to ask for: a list (enum members welcome), or one space-separated string."""

ExpiresAt = Union[datetime, timedelta, int]
"""An expiry: a datetime (naive means local time), a delay from now, or epoch milliseconds."""


SubjectTokenType = Literal[
    "urn:logto:token-type:impersonation_token",
    "urn:ietf:params:oauth:token-type:access_token",
]
"""How an impersonation subject token is announced: Logto's type, or the older access-token type."""


def _scopes(scopes: Optional[Scopes]) -> list[str]:
    if scopes is None:
        return []
    if isinstance(scopes, str):
        return (scopes.value if isinstance(scopes, Enum) else scopes).split()
    return [scope.value if isinstance(scope, Enum) else str(scope) for scope in scopes]


def _epoch_milliseconds(expiresAt: Optional[ExpiresAt]) -> Optional[int]:
    if expiresAt is None or isinstance(expiresAt, int):
        return expiresAt
    if isinstance(expiresAt, timedelta):
        expiresAt = datetime.now(timezone.utc) + expiresAt
    return int(expiresAt.timestamp() * 1000)


def _exchange_operation(
    exchange: Callable[[str, Optional[str], list[str], Optional[str]], Operation],
    subjectToken: str,
    resource: Optional[str],
    scopes: Optional[Scopes],
    organizationId: Optional[str],
) -> Operation:
    """A cached exchange of a reusable subject token, by the core method ``exchange``."""
    return exchange(subjectToken, resource, _scopes(scopes), organizationId)


def _impersonation_operation(
    core: Union[CoreClient, MachineClient],
    subjectToken: str,
    resource: Optional[str],
    scopes: Optional[Scopes],
    organizationId: Optional[str],
    actorToken: Optional[str],
    subjectTokenType: SubjectTokenType,
) -> Operation:
    return core.exchange_subject_token(
        subjectToken, resource, _scopes(scopes), organizationId, actorToken, subjectTokenType
    )


class _HasExchangeCore(Protocol):
    @property
    def _core(self) -> Union[CoreClient, MachineClient]: ...


class _TokenExchange:
    """``exchangePersonalAccessToken`` of :class:`LogtoClient` and :class:`LogtoM2MClient`."""

    __slots__ = ()

    async def exchangePersonalAccessToken(
        self: _HasExchangeCore,
        pat: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> TokenExchangeResult:
        """Exchange a user's personal access token for an access token acting as that user.

        RFC 8693 token exchange as Logto runs it, with this client's app (token exchange must be
        enabled for it). It needs no signed-in user and does not touch the storage. Scopes are
        never inherited from the personal access token: ask for them each time. The result is
        cached in this client, keyed by a hash of the token (never the token) and the arguments,
        until shortly before it expires; concurrent calls share one request.

        Args:
            pat: The personal access token (``pat_…``).
            resource: An API resource indicator: a JWT for it. Without a resource or an
                organization, an opaque token (ask for ``openid`` to use it at userinfo).
            scopes: The scopes to ask for.
            organizationId: An organization of the user: an organization token, or with
                ``resource`` an organization-scoped resource token.

        Raises:
            LogtoInvalidGrantError: the token is unknown, expired or revoked (``invalid_grant``).
            LogtoGrantNotAllowedError: token exchange is not enabled for the app.
            LogtoOAuthError: e.g. ``access_denied`` (403) for an organization of another user.

        """
        operation = _exchange_operation(
            self._core.exchange_personal_access_token, pat, resource, scopes, organizationId
        )
        return TokenExchangeResult.model_validate_json(await _driver.run(operation))

    async def exchangeAccessToken(
        self: _HasExchangeCore,
        subjectToken: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> TokenExchangeResult:
        """Delegate a user's access token: exchange it for a token to another API, as that user.

        Service-to-service delegation (Logto 1.38+): an API that received ``subjectToken`` (the
        user's access token, JWT or opaque) asks for a token to a downstream API or an
        organization, for the same user. This client's app must be confidential (it has a
        secret) and have token exchange allowed. Nothing is granted by default: ask for the
        scopes; Logto grants those the user's roles allow.

        The result is cached in this client, keyed by a hash of the subject token (never the
        token) and the arguments, until shortly before it expires, and never after the subject
        token's own ``exp`` (read from a JWT without verifying it). Concurrent calls share one
        request.

        Args:
            subjectToken: The user's access token, as the caller presented it.
            resource: The downstream API's resource indicator: a JWT for it.
            scopes: The scopes to ask for.
            organizationId: An organization of the user: an organization token, or with
                ``resource`` an organization-scoped resource token.

        Raises:
            LogtoConfigError: an empty token, or an app without a secret.
            LogtoInvalidGrantError: Logto does not accept the subject token (expired, forged,
                issued to a third-party app, or a Logto without delegation).
            LogtoGrantNotAllowedError: token exchange is not allowed for the app.
            LogtoOAuthError: e.g. ``access_denied`` (403) for an organization of another user.

        """
        operation = _exchange_operation(
            self._core.exchange_access_token, subjectToken, resource, scopes, organizationId
        )
        return TokenExchangeResult.model_validate_json(await _driver.run(operation))

    async def exchangeSubjectToken(
        self: _HasExchangeCore,
        subjectToken: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        *,
        actorToken: Optional[str] = None,
        subjectTokenType: SubjectTokenType = "urn:logto:token-type:impersonation_token",
    ) -> TokenExchangeResult:
        """Impersonate: exchange a subject token from the Management API for a token of its user.

        ``subjectToken`` comes from :meth:`ManagementApi.createSubjectToken` and can be exchanged
        once, within 600 s. The exchange is never cached: a second one of the same subject token
        fails, so keep the result for as long as you need it. This client's app must have token
        exchange allowed.

        Args:
            subjectToken: The subject token (``sub_…``).
            resource: An API resource indicator: a JWT for it. Without a resource or an
                organization, an opaque token (ask for ``openid`` to use it at userinfo).
            scopes: The scopes to ask for (nothing is granted by default).
            organizationId: An organization of the user.
            actorToken: An access token with ``openid`` (an opaque one, e.g.
                ``getAccessToken()`` of the acting user's session): the result names its user in
                its ``act`` claim, ``{"sub": <actor>}``.
            subjectTokenType: ``urn:logto:token-type:impersonation_token`` (the default), or
                ``urn:ietf:params:oauth:token-type:access_token``, the older form Logto accepts
                for the same tokens.

        Raises:
            LogtoInvalidGrantError: the subject token is unknown, expired or already used, or the
                actor token is not accepted.
            LogtoGrantNotAllowedError: token exchange is not allowed for the app.
            LogtoConfigError: an empty token, or another ``subjectTokenType``.

        """
        operation = _impersonation_operation(
            self._core, subjectToken, resource, scopes, organizationId, actorToken, subjectTokenType
        )
        return TokenExchangeResult.model_validate_json(await _driver.run(operation))


class _BlockingTokenExchange:
    """``exchangePersonalAccessToken`` of the blocking clients."""

    __slots__ = ()

    def exchangePersonalAccessToken(
        self: _HasExchangeCore,
        pat: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> TokenExchangeResult:
        """Blocking :meth:`LogtoClient.exchangePersonalAccessToken`."""
        operation = _exchange_operation(
            self._core.exchange_personal_access_token, pat, resource, scopes, organizationId
        )
        return TokenExchangeResult.model_validate_json(_driver.run_blocking(operation))

    def exchangeAccessToken(
        self: _HasExchangeCore,
        subjectToken: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> TokenExchangeResult:
        """Blocking :meth:`LogtoClient.exchangeAccessToken`."""
        operation = _exchange_operation(
            self._core.exchange_access_token, subjectToken, resource, scopes, organizationId
        )
        return TokenExchangeResult.model_validate_json(_driver.run_blocking(operation))

    def exchangeSubjectToken(
        self: _HasExchangeCore,
        subjectToken: str,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        *,
        actorToken: Optional[str] = None,
        subjectTokenType: SubjectTokenType = "urn:logto:token-type:impersonation_token",
    ) -> TokenExchangeResult:
        """Blocking :meth:`LogtoClient.exchangeSubjectToken`."""
        operation = _impersonation_operation(
            self._core, subjectToken, resource, scopes, organizationId, actorToken, subjectTokenType
        )
        return TokenExchangeResult.model_validate_json(_driver.run_blocking(operation))


class LogtoM2MConfig(SecretSafeModel):
    """Configuration of a machine-to-machine app.

    Attributes:
        endpoint: The Logto tenant, e.g. ``https://tenant.logto.app``.
        appId: The machine-to-machine app's id.
        appSecret: Its secret (sent with HTTP Basic); never shown in reprs.
        managementApiResource: The Management API's resource indicator. By default
            ``https://<tenant>.logto.app/api`` for a Logto Cloud endpoint, else the self-hosted
            ``https://default.logto.app/api``; give it for a Cloud tenant behind a custom domain.
        requestTimeout: Seconds allowed for one HTTP request.
        connectTimeout: Seconds allowed to open a connection.
        accessTokenMargin: A cached token is fetched again once it has less life left than this.
        allowInsecureHttp: Allow plain ``http://`` to hosts other than loopback (development
            only; see :class:`~logto_rs.LogtoConfig`).

    Unknown fields are refused, and no validation error ever contains the input (so never the
    secret).
    """

    endpoint: str
    appId: str
    appSecret: str = Field(repr=False)
    managementApiResource: Optional[str] = None
    requestTimeout: float = 10.0
    connectTimeout: float = 5.0
    accessTokenMargin: float = 60.0
    allowInsecureHttp: bool = False

    @model_validator(mode="after")
    def _validate_with_core(self) -> LogtoM2MConfig:
        MachineClient.validate_config(self)
        return self


class _M2MBase:
    """What both facades share: the configuration and the core (with its token cache)."""

    __slots__ = ("config", "_core")

    def __init__(self, config: LogtoM2MConfig) -> None:
        self.config = config
        self._core = MachineClient(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.config.endpoint!r}, appId={self.config.appId!r})"

    @property
    def managementApiResource(self) -> str:
        """The Management API's resource indicator the tokens are requested for."""
        return self._core.management_api_resource


class LogtoM2MClient(_M2MBase, _TokenExchange):
    """A machine-to-machine app: ``client_credentials`` tokens and token exchange.

    ``exchangePersonalAccessToken``, ``exchangeAccessToken`` and ``exchangeSubjectToken`` work as
    the :class:`LogtoClient` methods of those names, with this app's credentials.

    Args:
        config: The app's configuration.

    """

    @property
    def blocking(self) -> BlockingLogtoM2MClient:
        """The same client (configuration, token cache) with blocking methods."""
        blocking = BlockingLogtoM2MClient.__new__(BlockingLogtoM2MClient)
        blocking.config, blocking._core = self.config, self._core
        return blocking

    @property
    def managementApi(self) -> ManagementApi:
        """The Management API, called with this app's tokens (it needs the ``all`` scope)."""
        return ManagementApi(self)

    async def getAccessToken(
        self,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> MachineToken:
        """Return a token of the app for an API resource and/or an organization.

        Nothing is granted by default: ask for the scopes (granted: the asked ones the app's
        roles allow). Cached until shortly before it expires; concurrent calls share one request.

        Args:
            resource: The API resource indicator (this or ``organizationId`` is required).
            scopes: The scopes to ask for.
            organizationId: An organization the app belongs to: an organization token, or with
                ``resource`` an organization-scoped resource token.

        Raises:
            LogtoConfigError: neither a resource nor an organization, or an invalid value.
            LogtoGrantNotAllowedError: the app is not a machine-to-machine app.
            LogtoOAuthError: e.g. ``invalid_client`` (wrong secret), ``invalid_target``,
                ``access_denied`` (403, the app is not in the organization).

        """
        operation = self._core.client_credentials_token(resource, _scopes(scopes), organizationId)
        return MachineToken.model_validate_json(await _driver.run(operation))

    async def getManagementApiToken(self) -> MachineToken:
        """Return a Management API token (scope ``all``, for :attr:`managementApiResource`)."""
        return MachineToken.model_validate_json(await _driver.run(self._core.management_api_token()))


class BlockingLogtoM2MClient(_M2MBase, _BlockingTokenExchange):
    """:class:`LogtoM2MClient` with blocking methods, for scripts (releases the GIL while waiting)."""

    @property
    def managementApi(self) -> BlockingManagementApi:
        """The Management API with blocking methods."""
        return BlockingManagementApi(self)

    def getAccessToken(
        self,
        resource: Optional[str] = None,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
    ) -> MachineToken:
        """Blocking :meth:`LogtoM2MClient.getAccessToken`."""
        operation = self._core.client_credentials_token(resource, _scopes(scopes), organizationId)
        return MachineToken.model_validate_json(_driver.run_blocking(operation))

    def getManagementApiToken(self) -> MachineToken:
        """Blocking :meth:`LogtoM2MClient.getManagementApiToken`."""
        return MachineToken.model_validate_json(_driver.run_blocking(self._core.management_api_token()))


def _tokens(items: Sequence[BaseModel]) -> list[PersonalAccessToken]:
    return [_token(item) for item in items]


def _token(item: BaseModel) -> PersonalAccessToken:
    return PersonalAccessToken.model_validate(item.model_dump(by_alias=True))


def _subject_token_body(userId: str, context: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    if not userId:
        raise LogtoConfigError("userId must not be empty", "config.invalid")
    body: dict[str, Any] = {"userId": userId}
    if context is not None:
        if not isinstance(context, Mapping):
            raise LogtoConfigError("the subject token's context must be a JSON object", "config.invalid")
        try:
            body["context"] = json.loads(json.dumps(dict(context)))
        except (TypeError, ValueError):
            raise LogtoConfigError("the subject token's context is not JSON", "config.invalid") from None
    return body


def _subject_token(created: Any) -> SubjectToken:
    if not created.subjectToken:
        raise LogtoResponseError(
            "unexpected response from the management_api endpoint (HTTP 201): the subject token is empty",
            "response.unexpected",
            status=201,
        )
    expiresIn = int(created.expiresIn)
    return SubjectToken.model_validate(
        {
            "subjectToken": created.subjectToken,
            "expiresIn": expiresIn,
            "expiresAt": int(time.time()) + expiresIn,
        }
    )


class _ManagementBase:
    __slots__ = ("_core",)

    def __init__(self, client: Union[_M2MBase, LogtoM2MConfig]) -> None:
        self._core = client._core if isinstance(client, _M2MBase) else MachineClient(client)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resource={self._core.management_api_resource!r})"

    def _generated(self, client: type[_Generated]) -> _Generated:
        """The generated client (awaitable or blocking) on this API's core and token cache."""
        api = client.__new__(client)
        api._attach(self._core, None)
        return api


class ManagementApi(_ManagementBase):
    """A user's personal access tokens, and impersonation subject tokens, through Logto's Management API.

    Shortcuts over :class:`logto_rs.management.ManagementClient`, which has every other
    operation. Calls are made with a machine-to-machine app's Management API token (cached; the
    app needs a role with the Management API's ``all`` scope). Tokens' values are secrets: they
    are left out of every ``repr``. Errors are :class:`LogtoApiError` subclasses: 404 unknown
    user or token (:class:`LogtoApiNotFoundError`), 422 name already used
    (:class:`LogtoApiConflictError`), 400 ``expiresAt`` not in the future
    (:class:`LogtoApiInvalidInputError`), 401/403 no access (:class:`LogtoApiAuthError`).

    Args:
        client: The machine-to-machine client (its token cache is shared), or its configuration.

    """

    @property
    def blocking(self) -> BlockingManagementApi:
        """The same API with blocking methods."""
        twin = BlockingManagementApi.__new__(BlockingManagementApi)
        twin._core = self._core
        return twin

    @property
    def _api(self) -> ManagementClient:
        from .management import ManagementClient

        return self._generated(ManagementClient)

    async def listPersonalAccessTokens(self, userId: str) -> list[PersonalAccessToken]:
        """Return the user's personal access tokens (with their values)."""
        return _tokens(await self._api.listUserPersonalAccessTokens(userId))

    async def createPersonalAccessToken(
        self, userId: str, name: str, expiresAt: Optional[ExpiresAt] = None
    ) -> PersonalAccessToken:
        """Create a personal access token named ``name`` (unique per user).

        Args:
            userId: The user.
            name: The token's name.
            expiresAt: When it expires (a datetime, a delay from now, or epoch milliseconds);
                ``None``: never.

        """
        body = {"name": name, "expiresAt": _epoch_milliseconds(expiresAt)}
        return _token(await self._api.createUserPersonalAccessToken(userId, body))

    async def renamePersonalAccessToken(
        self, userId: str, currentName: str, name: str
    ) -> PersonalAccessToken:
        """Rename the personal access token ``currentName`` to ``name``."""
        body = {"name": name, "currentName": currentName}
        return _token(await self._api.updatePersonalAccessTokenName(userId, body))

    async def deletePersonalAccessToken(self, userId: str, name: str) -> None:
        """Delete the personal access token ``name``; it can no longer be exchanged."""
        await self._api.deletePersonalAccessTokenPost(userId, {"name": name})

    async def createSubjectToken(
        self, userId: str, context: Optional[Mapping[str, Any]] = None
    ) -> SubjectToken:
        """Create an impersonation subject token for the user (Logto 1.19+).

        Exchange it once, within ``expiresIn`` seconds (600), with ``exchangeSubjectToken`` of an
        app that has token exchange allowed. Logto Cloud limits it by plan.

        Args:
            userId: The user to impersonate.
            context: A JSON object Logto hands to the JWT customizer of the exchanged token
                (e.g. a ticket number); it must be JSON-serialisable.

        Raises:
            LogtoApiNotFoundError: no such user.
            LogtoApiAuthError: the app has no Management API access.
            LogtoConfigError: an empty ``userId``.

        """
        body = _subject_token_body(userId, context)
        return _subject_token(await self._api.createSubjectToken(body))


class BlockingManagementApi(_ManagementBase):
    """:class:`ManagementApi` with blocking methods."""

    @property
    def _api(self) -> BlockingManagementClient:
        from .management import BlockingManagementClient

        return self._generated(BlockingManagementClient)

    def listPersonalAccessTokens(self, userId: str) -> list[PersonalAccessToken]:
        """Blocking :meth:`ManagementApi.listPersonalAccessTokens`."""
        return _tokens(self._api.listUserPersonalAccessTokens(userId))

    def createPersonalAccessToken(
        self, userId: str, name: str, expiresAt: Optional[ExpiresAt] = None
    ) -> PersonalAccessToken:
        """Blocking :meth:`ManagementApi.createPersonalAccessToken`."""
        body = {"name": name, "expiresAt": _epoch_milliseconds(expiresAt)}
        return _token(self._api.createUserPersonalAccessToken(userId, body))

    def renamePersonalAccessToken(self, userId: str, currentName: str, name: str) -> PersonalAccessToken:
        """Blocking :meth:`ManagementApi.renamePersonalAccessToken`."""
        return _token(
            self._api.updatePersonalAccessTokenName(userId, {"name": name, "currentName": currentName})
        )

    def deletePersonalAccessToken(self, userId: str, name: str) -> None:
        """Blocking :meth:`ManagementApi.deletePersonalAccessToken`."""
        self._api.deletePersonalAccessTokenPost(userId, {"name": name})

    def createSubjectToken(self, userId: str, context: Optional[Mapping[str, Any]] = None) -> SubjectToken:
        """Blocking :meth:`ManagementApi.createSubjectToken`."""
        return _subject_token(self._api.createSubjectToken(_subject_token_body(userId, context)))


async def exchange_personal_access_token(
    config: LogtoConfig,
    pat: str,
    *,
    resource: Optional[str] = None,
    scopes: Optional[Scopes] = None,
    organizationId: Optional[str] = None,
) -> TokenExchangeResult:
    """Exchange a personal access token once, for scripts with no user session and no client.

    The app of ``config`` authenticates with HTTP Basic when it has a secret, else with its
    ``client_id`` alone (a public app). Nothing is cached: keep a :class:`LogtoClient` or
    :class:`LogtoM2MClient` to reuse tokens. See :meth:`LogtoClient.exchangePersonalAccessToken`.
    """
    operation = _exchange_operation(
        CoreClient(config).exchange_personal_access_token, pat, resource, scopes, organizationId
    )
    return TokenExchangeResult.model_validate_json(await _driver.run(operation))


def exchange_personal_access_token_blocking(
    config: LogtoConfig,
    pat: str,
    *,
    resource: Optional[str] = None,
    scopes: Optional[Scopes] = None,
    organizationId: Optional[str] = None,
) -> TokenExchangeResult:
    """Blocking :func:`exchange_personal_access_token`."""
    operation = _exchange_operation(
        CoreClient(config).exchange_personal_access_token, pat, resource, scopes, organizationId
    )
    return TokenExchangeResult.model_validate_json(_driver.run_blocking(operation))
