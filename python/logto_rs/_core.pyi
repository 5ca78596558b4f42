"""Stubs of the native module ``logto_rs._core`` (private: use the ``logto_rs`` package)."""

from typing import Any, Optional, Union, final

from .errors import LogtoException

__all__ = [
    "__version__",
    "CoreClient",
    "Operation",
    "MachineClient",
    "CoreVerifier",
    "_BenchBareVerifier",
    "_check_claims",
]

__version__: str

@final
class Operation:
    """One client call in progress, driven by ``logto_rs._driver``."""

    def step(self) -> tuple[int, Any]:
        """Poll once: ``(0, result)`` done, ``(1, awaitable)`` await it, ``(2, None)`` wait."""
    def resume(self, value: Any) -> None:
        """Deliver the result of the awaitable handed out by ``step``."""
    def throw(self, exception: BaseException) -> None:
        """Deliver the exception raised by the awaitable handed out by ``step``."""
    @property
    def must_finish(self) -> bool:
        """Whether the operation passed its point of no return (run it to its end)."""
    def fileno(self) -> int:
        """A descriptor that becomes readable when the operation can make progress."""
    def drain_wakes(self) -> None:
        """Empty the wake-up descriptor."""
    def wait_blocking(self) -> None:
        """Block, without the GIL, until the operation can make progress (or 0.1 s: signals)."""

@final
class CoreClient:
    """The Rust client; each method returns an :class:`Operation`."""

    def __new__(cls, config: Any) -> CoreClient: ...
    @staticmethod
    def validate_config(config: Any) -> tuple[list[str], list[str]]:
        """Validate a ``LogtoConfig``; return the normalised ``(scopes, resources)``."""
    @property
    def scopes(self) -> list[str]:
        """The normalised scopes requested at sign-in."""
    @property
    def resources(self) -> list[str]:
        """The normalised resources requested at sign-in."""
    def sign_in(
        self,
        storage: Any,
        redirect_uri: str,
        *,
        post_redirect_uri: Optional[str] = None,
        interaction_mode: Optional[str] = None,
        first_screen: Optional[str] = None,
        identifiers: list[str] = ...,
        direct_sign_in: Optional[str] = None,
        login_hint: Optional[str] = None,
        prompt: Optional[str] = None,
        extra_params: list[tuple[str, str]] = ...,
    ) -> Operation: ...
    def handle_sign_in_callback(self, storage: Any, callback_url: str) -> Operation: ...
    def account_call(
        self,
        storage: Any,
        method: str,
        segments: list[str],
        query: list[tuple[str, str]],
        body: Optional[str],
        headers: list[tuple[str, str]],
        retry: tuple[int, float, float],
    ) -> Operation:
        """One Account API call as the signed-in user: ``(status, total_number, body_text)``."""
    def sign_out(self, storage: Any, post_logout_redirect_uri: Optional[str] = None) -> Operation: ...
    def is_authenticated(self, storage: Any) -> Operation: ...
    def get_id_token(self, storage: Any) -> Operation: ...
    def get_refresh_token(self, storage: Any) -> Operation: ...
    def get_id_token_claims(self, storage: Any) -> Operation: ...
    @staticmethod
    def decode_id_token_claims(token: str) -> str:
        """The claims of a stored ID token as JSON (decoded, not verified again)."""
    def cached_access_token(
        self, storage: Any, resource: str, organization_id: Optional[str] = None
    ) -> Optional[str]:
        """The fresh cached token (the synchronous cache-hit path), or ``None``."""
    def get_access_token(
        self, storage: Any, resource: str, organization_id: Optional[str] = None
    ) -> Operation: ...
    def get_access_token_claims(
        self, storage: Any, resource: str, organization_id: Optional[str] = None, verify: bool = False
    ) -> Operation: ...
    def fetch_user_info(self, storage: Any) -> Operation: ...
    def cached_context(
        self,
        stored_map: Optional[str],
        organization_ids: list[str],
        access_tokens: bool,
        organization_tokens: bool,
    ) -> Optional[tuple[list[tuple[str, str]], list[tuple[str, str]]]]:
        """The context's ``(access, organization)`` tokens fresh in ``stored_map``, or ``None``."""
    def get_context(
        self,
        storage: Any,
        snapshot: Optional[tuple[Optional[str], Optional[str]]],
        *,
        fetch_user_info: bool,
        access_tokens: bool,
        organization_tokens: bool,
    ) -> Operation:
        """The user's context as JSON, from ``snapshot`` ``(idToken, accessTokenMap)`` or one read."""
    def signed_in_with_fresh_id_token(self, storage: Any) -> Operation:
        """Whether a user is signed in with an unexpired ID token, renewing an expired one first (a bool)."""
    def clear_access_token(self, storage: Any) -> Operation: ...
    def clear_all_tokens(self, storage: Any) -> Operation: ...
    def start_device_sign_in(self, organization_id: Optional[str] = None) -> Operation:
        """Start a device sign-in (RFC 8628); the operation returns its JSON."""
    def complete_device_sign_in(
        self, storage: Any, device_code: str, expires_at: int, interval: int
    ) -> Operation:
        """Poll until the device sign-in is approved, then store the tokens in ``storage``."""
    # Back-channel logout.
    def verify_logout_token(self, token: str) -> Operation:
        """Verify a logout token (every check but the replay); gives ``{sub, sid, iat, exp, jti}`` as JSON."""
    def claim_logout_token(self, jti: str, expires_at: int, replay_store: Any = None) -> Operation:
        """Claim a verified logout token's ``jti`` until ``expires_at``; a replay fails the ``jti`` check."""
    # Machine tokens.
    def exchange_personal_access_token(
        self,
        pat: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
    ) -> Operation:
        """Exchange a personal access token (RFC 8693); the result is a ``TokenExchangeResult`` JSON."""
    def exchange_access_token(
        self,
        subject_token: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
    ) -> Operation:
        """Delegate a user's access token (cached); the result is a ``TokenExchangeResult`` JSON."""
    def exchange_subject_token(
        self,
        subject_token: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
        actor_token: Optional[str] = None,
        subject_token_type: Optional[str] = None,
    ) -> Operation:
        """Exchange an impersonation subject token once (never cached); ``TokenExchangeResult`` JSON."""

# Machine tokens.

@final
class MachineClient:
    """A machine-to-machine app's client; each network method returns an :class:`Operation`.

    Results are JSON strings (``MachineToken``, ``TokenExchangeResult``), or for
    ``management_call`` the answer's ``(status, total_number, body_text)``.
    """

    def __new__(cls, config: Any) -> MachineClient: ...
    @staticmethod
    def validate_config(config: Any) -> None:
        """Validate a ``LogtoM2MConfig``."""
    @property
    def management_api_resource(self) -> str:
        """The Management API's resource indicator."""
    def management_call(
        self,
        method: str,
        segments: list[str],
        query: list[tuple[str, str]],
        body: Optional[str],
        headers: list[tuple[str, str]],
        retry: tuple[int, float, float],
    ) -> Operation:
        """One Management API call: ``(status, total_number, body_text)``."""
    def client_credentials_token(
        self,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
    ) -> Operation: ...
    def management_api_token(self) -> Operation: ...
    def exchange_personal_access_token(
        self,
        pat: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
    ) -> Operation: ...
    def exchange_access_token(
        self,
        subject_token: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
    ) -> Operation: ...
    def exchange_subject_token(
        self,
        subject_token: str,
        resource: Optional[str] = None,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
        actor_token: Optional[str] = None,
        subject_token_type: Optional[str] = None,
    ) -> Operation: ...

# --- The access-token verifier --------------------------------------------------------------------

@final
class CoreVerifier:
    """The Rust access-token verifier, driven by ``logto_rs.verifier``.

    ``verify``/``verify_many`` answer from the cached keys without I/O (``None``: load the keys
    with ``load_keys()``, then call again with ``final_attempt=True``).
    """

    def __new__(
        cls,
        endpoint: str,
        audience: Optional[str] = None,
        *,
        scopes: list[str] = ...,
        organization_id: Optional[str] = None,
        clock_tolerance: float = 60.0,
        jwks_refetch_cooldown: float = 30.0,
        request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        allow_insecure_http: bool = False,
        cache_size: int = 4096,
        cache_ttl: float = 300.0,
        allow_impersonation: bool = True,
        introspect_with: Optional[tuple[str, str]] = None,
        introspection_ttl: float = 30.0,
        introspection_clients: list[str] = ...,
        introspection_negative_ttl: float = 60.0,
        introspection_rate_limit: Optional[float] = ...,
    ) -> CoreVerifier: ...
    @property
    def issuer(self) -> str:
        """The issuer tokens must carry."""
    @property
    def audience(self) -> Optional[str]:
        """The configured audience, or ``None`` (organization tokens)."""
    @property
    def scopes(self) -> list[str]:
        """The scopes every token must have."""
    @property
    def organization_id(self) -> Optional[str]:
        """The organization every token must be for, or ``None``."""
    @property
    def allow_impersonation(self) -> bool:
        """Whether tokens with an actor (``act``) are accepted."""
    @property
    def cache_size(self) -> int:
        """Most verified tokens cached (0: no cache)."""
    @property
    def introspects(self) -> bool:
        """Whether opaque tokens are introspected."""
    def needs_introspection(self, token: str) -> bool:
        """Whether ``token`` is opaque and introspected (``verify`` answers ``None`` for it)."""
    def introspect(
        self, token: str, scopes: Optional[list[str]] = None, organization_id: Optional[str] = None
    ) -> Operation:
        """Verify an opaque token by introspection; the operation's result is the claims' JSON."""
    def _shift_clock(self, seconds: int) -> None:
        """Move this verifier's clock by ``seconds`` (tests only)."""
    def verify(
        self,
        token: str,
        scopes: Optional[list[str]] = None,
        organization_id: Optional[str] = None,
        final_attempt: bool = False,
    ) -> Optional[str]:
        """The payload's JSON text, or ``None`` when the keys must be loaded first."""
    def verify_many(
        self,
        tokens: list[str],
        scopes: Optional[list[str]] = None,
        organization_id: Optional[str] = None,
        final_attempt: bool = False,
    ) -> list[Union[str, LogtoException, None]]:
        """Per token: the payload's JSON text, the rejecting exception, or ``None`` (load keys)."""
    def load_keys(self, tokens: Optional[list[str]] = None) -> Operation:
        """Discover the provider (once) and fetch the JWKS when needed.

        Needed: none is cached, it is past its age, or (rate-limited) it lacks a key of ``tokens``.
        """

@final
class _BenchBareVerifier:
    """The benchmarks' floor: a bare signature check with a pre-parsed key (not an API)."""

    def __new__(cls, jwk: str) -> _BenchBareVerifier: ...
    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` (raw bytes) verifies over ``message``."""

def _check_claims(payload: str, id_token: bool, issuer: str, audience: str, now: int) -> Optional[str]:
    """The claim checks of a verified token on a payload alone: ``None``, or the failed check."""
