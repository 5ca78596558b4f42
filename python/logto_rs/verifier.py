"""``AccessTokenVerifier``: verify the Logto access tokens that reach your API.

One verifier serves a whole process (it is thread-safe). It discovers the tenant's issuer and
keys once, keeps the parsed keys for the JWKS answer's ``max-age`` (at least
``jwksRefetchCooldown``, at most 24 hours, 10 minutes without one), and refetches them when a
token names an unknown key id (a burst of two such refetches, then one per
``jwksRefetchCooldown``, so forged key ids cannot flood Logto nor keep a real rotation out; a key
id a fetch has just looked for in vain is not looked for again within the cooldown).
Each token is checked in Rust: ``typ`` (``at+jwt``), ``crit`` (refused), the signature
(ES256/ES384/ES512/RS*/PS* only; ``none`` and HS* are refused), ``iss``, ``aud``, ``sub``,
``exp``, ``iat`` and ``nbf`` (with ``clockTolerance``), the types of the claims
:class:`~logto_rs.AccessTokenClaims` declares, then the required organization and scopes.

If the keys cannot be fetched, :class:`~logto_rs.LogtoNetworkError` or
:class:`~logto_rs.LogtoResponseError` is raised (an outage, not a bad token); while keys are
cached they keep serving, so a token whose key is unknown is still a 401.

Like :class:`~logto_rs.LogtoClient`, the verifier's methods are awaitable and its ``blocking``
twin has the same methods for synchronous code (Flask, Django, scripts). Both do the signature
check in the calling thread with the GIL released; only loading the keys waits for the network,
and that is where the awaitable methods yield. ``verifyMany`` checks a batch on every core.

A rejected token raises :class:`~logto_rs.LogtoInvalidTokenError` (401) or
:class:`~logto_rs.LogtoInsufficientScopeError` (403); both carry ``status``, ``check`` and the
``www_authenticate`` header value to answer with.

An API sees the same bearer token on many requests, so verified tokens are cached (on by
default, ``cacheSize`` entries, each for at most ``cacheTtl`` seconds, tokens up to 4 KiB): a
repeated token skips the signature check, but every use checks ``exp``/``iat``/``nbf`` again
(same ``clockTolerance``) and the call's audience, organization and scopes. Entries are keyed by
the token's SHA-256, hold only its claims, and are dropped as soon as the key set changes (a key
added or withdrawn), so the answers are exactly those of a verifier without cache. Each process
has its own (a forked worker starts empty).

With ``introspectWith=(clientId, clientSecret)`` an opaque access token (Logto issues one when
no API resource is asked for) is verified at the provider's introspection endpoint with those
app credentials; active answers are reused for ``introspectionTtl`` seconds at most (never past
the token's ``exp``), inactive ones for ``introspectionNegativeTtl``, and concurrent requests
with one token share one introspection. At most ``introspectionRateLimit`` introspections are
sent a second: a new opaque token beyond that is a 401 (check ``introspection_rate``). Such a
token names no API (its ``aud`` is empty), and any app of the tenant can get one for its user,
so it is accepted only when issued to an app of ``introspectionClients`` (by default the app of
``introspectWith``), else it is a 401 (check ``client_id``); an inactive token is a 401 (check
``active``).

A token with an actor (``act``: Logto issues one when a first-party app exchanges a subject
token an administrator created, i.e. impersonation) is accepted by default and its actor is in
``claims.act``; ``allowImpersonation=False`` rejects such tokens as invalid (401, check ``act``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional, Union, cast

from pydantic import ValidationError

from . import _driver
from ._core import CoreVerifier, Operation
from ._steps import Steps, drive_async, drive_blocking
from .errors import LogtoConfigError, LogtoException
from .models import AccessTokenClaims

__all__ = [
    "DEFAULT_ROLES_CLAIM",
    "AccessTokenVerifier",
    "BlockingAccessTokenVerifier",
    "Scopes",
    "VerifyManyResult",
    "role_list",
    "scope_list",
    "verify_steps",
]

Scopes = Union[str, Sequence[str]]
"""Required scopes: a sequence (``["read:products"]``) or one space-separated string."""

VerifyManyResult = list[Union[AccessTokenClaims, LogtoException]]
"""What ``verifyMany`` returns: per token, in order, its claims or the exception rejecting it."""

DEFAULT_ROLES_CLAIM = "roles"
"""The claim holding a token's roles unless a call names another (a custom JWT claims script
adds it: Logto puts no roles in access tokens by itself)."""


def _claims(payload: str) -> AccessTokenClaims:
    """Return the model of a verified payload.

    The Rust checks make every verified payload fit it (a property test proves it); should one
    not, it is a rejected token (401, check ``claims``), never a bare pydantic error.
    """
    try:
        return AccessTokenClaims.model_validate_json(payload)
    except (ValidationError, ValueError, RecursionError):
        raise CoreVerifier.rejection("claims") from None


def role_list(roles: Optional[Iterable[str]]) -> Optional[list[str]]:
    """Return required roles as a list (``None`` or none: no role is required).

    Raises:
        LogtoConfigError: one string instead of a list (role names may contain spaces, so a
            string is not split).

    """
    if isinstance(roles, str):
        raise LogtoConfigError(
            f"roles must be a list of role names, not one string (roles=[{roles!r}])", "config.invalid"
        )
    return list(roles) if roles else None


def scope_list(scopes: Optional[Scopes]) -> Optional[list[str]]:
    """Return required scopes as a list (``None`` stays ``None``: nothing more is required)."""
    if scopes is None:
        return None
    if isinstance(scopes, str):
        return scopes.split()
    return list(scopes)


class _VerifierBase:
    """What both facades share: the configuration and the core."""

    __slots__ = ("_core", "_endpoint", "_blocking")

    def __init__(
        self,
        endpoint: str,
        audience: Optional[str] = None,
        *,
        scopes: Scopes = (),
        organizationId: Optional[str] = None,
        clockTolerance: float = 60.0,
        jwksRefetchCooldown: float = 30.0,
        requestTimeout: float = 10.0,
        connectTimeout: float = 5.0,
        allowInsecureHttp: bool = False,
        allowImpersonation: bool = True,
        cacheSize: int = 4096,
        cacheTtl: float = 300.0,
        introspectWith: Optional[tuple[str, str]] = None,
        introspectionTtl: float = 30.0,
        introspectionClients: Sequence[str] = (),
        introspectionNegativeTtl: float = 60.0,
        introspectionRateLimit: Optional[float] = 50.0,
    ) -> None:
        self._endpoint = endpoint
        self._blocking: Optional[BlockingAccessTokenVerifier] = None
        self._core = CoreVerifier(
            endpoint,
            audience,
            scopes=scope_list(scopes) or [],
            organization_id=organizationId,
            clock_tolerance=clockTolerance,
            jwks_refetch_cooldown=jwksRefetchCooldown,
            request_timeout=requestTimeout,
            connect_timeout=connectTimeout,
            allow_insecure_http=allowInsecureHttp,
            cache_size=cacheSize,
            cache_ttl=cacheTtl,
            allow_impersonation=allowImpersonation,
            introspect_with=introspectWith,
            introspection_ttl=introspectionTtl,
            introspection_clients=list(introspectionClients),
            introspection_negative_ttl=introspectionNegativeTtl,
            introspection_rate_limit=introspectionRateLimit,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self._endpoint!r}, audience={self.audience!r})"

    @property
    def endpoint(self) -> str:
        """The Logto tenant's endpoint."""
        return self._endpoint

    @property
    def issuer(self) -> str:
        """The issuer every token must carry: ``{endpoint}/oidc``."""
        return self._core.issuer

    @property
    def audience(self) -> Optional[str]:
        """The audience every token must have, or ``None`` for organization tokens.

        Without an audience, each call names the organization and the audience is
        ``urn:logto:organization:<organizationId>``.
        """
        return self._core.audience

    @property
    def scopes(self) -> list[str]:
        """The scopes every token must have."""
        return self._core.scopes

    @property
    def organizationId(self) -> Optional[str]:
        """The organization every token must be for, or ``None``."""
        return self._core.organization_id

    @property
    def allowImpersonation(self) -> bool:
        """Whether tokens with an actor (``act``, impersonation) are accepted."""
        return self._core.allow_impersonation


Run = Callable[[Operation], Any]
"""How a verification runs an ``Operation``: ``_driver.run`` (an awaitable) or
``_driver.run_blocking`` (its value)."""


def verify_steps(
    verifier: _VerifierBase,
    run: Run,
    token: Optional[str],
    *,
    scopes: Optional[Scopes] = None,
    organization_id: Optional[str] = None,
    roles: Optional[Iterable[str]] = None,
    roles_claim: str = DEFAULT_ROLES_CLAIM,
) -> Steps[AccessTokenClaims]:
    """The verification of one token, for :func:`~logto_rs._steps.drive_async` or ``drive_blocking``.

    The token is checked with the cached keys in this thread; only when the core cannot decide
    (keys to load, an opaque token to introspect) does it run the core's one verification
    sequence (``settle``) through ``run``. ``None`` (no token) is rejected with the bare
    ``Bearer`` challenge (check ``missing``).
    """
    core = verifier._core
    demands = _demands(scopes, organization_id, roles, roles_claim)
    payload = core.verify(token, *demands)  # raises for a missing token, or one the keys reject
    if payload is None:
        [verdict] = yield from _settled(core, run, [cast(str, token)], [payload], demands)
        if isinstance(verdict, LogtoException):
            raise verdict
        payload = verdict
    return _claims(payload)


def _verify_many_steps(
    verifier: _VerifierBase,
    run: Run,
    tokens: Iterable[str],
    scopes: Optional[Scopes],
    organization_id: Optional[str],
    roles: Optional[Iterable[str]],
    roles_claim: str,
) -> Steps[VerifyManyResult]:
    """The verification of a batch, for ``drive_async`` or ``drive_blocking``."""
    core = verifier._core
    token_list = tokens if isinstance(tokens, list) else list(tokens)
    demands = _demands(scopes, organization_id, roles, roles_claim)
    first = core.verify_many(token_list, *demands)
    verdicts = yield from _settled(core, run, token_list, first, demands)
    return [verdict if isinstance(verdict, LogtoException) else _claims(verdict) for verdict in verdicts]


_Verdict = Union[str, LogtoException]
_Demands = tuple[Optional[list[str]], Optional[str], Optional[list[str]], str]


def _demands(
    scopes: Optional[Scopes], organization_id: Optional[str], roles: Optional[Iterable[str]], roles_claim: str
) -> _Demands:
    """A call's requirements as the core takes them."""
    return scope_list(scopes), organization_id, role_list(roles), roles_claim


def _settled(
    core: CoreVerifier,
    run: Run,
    tokens: list[str],
    verdicts: list[Optional[_Verdict]],
    demands: _Demands,
) -> Steps[list[_Verdict]]:
    """Complete the verdicts the cached keys left open (``None``) with one ``settle`` of the core."""
    pending = [index for index, verdict in enumerate(verdicts) if verdict is None]
    if pending:
        settled = yield run(core.settle([tokens[index] for index in pending], *demands))
        for index, verdict in zip(pending, settled):
            verdicts[index] = verdict
    return cast(list[_Verdict], verdicts)


class AccessTokenVerifier(_VerifierBase):
    """Verifies the access tokens (JWT, ``typ: at+jwt``) that Logto issues for your API.

    Args:
        endpoint: The Logto tenant, e.g. ``https://tenant.logto.app``.
        audience: Your API resource indicator (e.g. ``https://api.example.com``), or
            ``urn:logto:organization:<id>`` for organization tokens. ``None`` accepts
            organization tokens of the organization each call names.
        scopes: Scopes every token must have.
        organizationId: The organization every token must be for (an organization token's
            organization, or an organization-scoped resource token's ``organization_id``).
        clockTolerance: Seconds of clock skew tolerated on ``exp``/``iat``/``nbf``.
        jwksRefetchCooldown: Paces key refetches caused by unknown key ids (a burst of two,
            then one per cooldown; a key id just looked for in vain waits a whole cooldown) and
            is the shortest time fetched keys are kept.
        requestTimeout: Seconds allowed for one request to Logto.
        connectTimeout: Seconds allowed to open a connection to Logto.
        allowInsecureHttp: Allow plain ``http://`` to hosts other than loopback, for
            development only (by default the endpoint and every discovered URL must be
            ``https``, or ``http`` to ``localhost``/``127.0.0.1``/``[::1]``).
        allowImpersonation: Accept tokens with an actor (``act``); ``False`` rejects them
            with :class:`~logto_rs.LogtoInvalidTokenError` (401, check ``act``).
        cacheSize: Most verified tokens cached per process (``0`` turns the cache off).
        cacheTtl: Longest time, in seconds, a verified token is reused without a signature
            check (its ``exp`` and the call's requirements are checked on every use).
        introspectWith: ``(clientId, clientSecret)`` of a Logto app (a traditional web or
            machine-to-machine app) to verify opaque access tokens at the provider's
            introspection endpoint. Without it opaque tokens are rejected as malformed.
        introspectionTtl: Longest time, in seconds, an active introspection answer is reused
            (never past the token's ``exp``); a revoked opaque token is refused at most this
            late.
        introspectionClients: The app ids whose opaque tokens are accepted (an opaque token
            names no API; any app of the tenant can get one). Empty (the default): the app of
            ``introspectWith`` alone. Others are rejected (401, check ``client_id``).
        introspectionNegativeTtl: Seconds an inactive answer is reused (``0``: not at all), in
            a cache of its own bounded by ``cacheSize``.
        introspectionRateLimit: Most introspection requests a second, in bursts of as many
            (``None``: no bound). A token that would need one more is rejected (401, check
            ``introspection_rate``) without a request.

    Raises:
        LogtoConfigError: an invalid endpoint, audience, scope or timeout.

    Methods are awaitable; :attr:`blocking` has the same methods for synchronous code.
    """

    __slots__ = ()

    @property
    def blocking(self) -> BlockingAccessTokenVerifier:
        """The same verifier (configuration, keys) with blocking methods."""
        blocking = self._blocking
        if blocking is None:
            blocking = BlockingAccessTokenVerifier.__new__(BlockingAccessTokenVerifier)
            blocking._core, blocking._endpoint, blocking._blocking = self._core, self._endpoint, None
            self._blocking = blocking
        return blocking

    async def verify(
        self,
        token: str,
        *,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        roles: Optional[Iterable[str]] = None,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
    ) -> AccessTokenClaims:
        """Verify ``token`` and return its claims.

        The signature check runs in this thread (without the GIL); the call yields to the event
        loop only when the keys must be fetched (the first call, or an unknown key id).

        Args:
            token: The bearer token (without ``Bearer``).
            scopes: More scopes this call requires (added to the configured ones).
            organizationId: The organization this call requires (overrides the configured one).
            roles: Roles the token must all hold in its ``roles_claim`` claim (a list of
                names; Logto adds one through a custom JWT claims script).
            roles_claim: The claim holding the roles.

        Raises:
            LogtoInvalidTokenError: 401: malformed, forged, expired, or not for this API.
            LogtoInsufficientScopeError: 403: a required scope, organization or role is missing.
            LogtoNetworkError, LogtoResponseError: the keys could not be fetched.
            LogtoConfigError: an invalid scope, or no audience and no organization.

        """
        return await drive_async(
            verify_steps(
                self,
                _driver.run,
                token,
                scopes=scopes,
                organization_id=organizationId,
                roles=roles,
                roles_claim=roles_claim,
            )
        )

    async def verifyMany(
        self,
        tokens: Iterable[str],
        *,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        roles: Optional[Iterable[str]] = None,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
    ) -> VerifyManyResult:
        """Verify many tokens at once, on every core, and return one result per token.

        Each result is the token's :class:`~logto_rs.AccessTokenClaims`, or the exception that
        rejects it (as :func:`asyncio.gather` with ``return_exceptions=True`` does). The keys
        are fetched at most once for the whole batch. The checks run in this thread and helper
        threads, without the GIL; the event loop waits for them (about 0.1 ms per ES384 token
        on two cores), so hand very large batches to ``asyncio.to_thread`` with the blocking
        twin.

        Args:
            tokens: The bearer tokens.
            scopes: More scopes every token must have.
            organizationId: The organization every token must be for.
            roles: Roles every token must hold in its ``roles_claim`` claim.
            roles_claim: The claim holding the roles.

        Raises:
            LogtoConfigError: an invalid scope, or no audience and no organization.

        """
        return await drive_async(
            _verify_many_steps(self, _driver.run, tokens, scopes, organizationId, roles, roles_claim)
        )


class BlockingAccessTokenVerifier(_VerifierBase):
    """:class:`AccessTokenVerifier` with blocking methods, for synchronous code.

    Takes the same arguments. While it waits for Logto (only to load the keys) it releases the
    GIL; the signature check also runs without the GIL.
    """

    __slots__ = ()

    def verify(
        self,
        token: str,
        *,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        roles: Optional[Iterable[str]] = None,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
    ) -> AccessTokenClaims:
        """Blocking :meth:`AccessTokenVerifier.verify`."""
        return drive_blocking(
            verify_steps(
                self,
                _driver.run_blocking,
                token,
                scopes=scopes,
                organization_id=organizationId,
                roles=roles,
                roles_claim=roles_claim,
            )
        )

    def verifyMany(
        self,
        tokens: Iterable[str],
        *,
        scopes: Optional[Scopes] = None,
        organizationId: Optional[str] = None,
        roles: Optional[Iterable[str]] = None,
        roles_claim: str = DEFAULT_ROLES_CLAIM,
    ) -> VerifyManyResult:
        """Blocking :meth:`AccessTokenVerifier.verifyMany`."""
        return drive_blocking(
            _verify_many_steps(self, _driver.run_blocking, tokens, scopes, organizationId, roles, roles_claim)
        )
