"""Device sign-in (RFC 8628, Logto 1.38+) for command lines and headless scripts.

A person signs in on another device (a phone, a laptop's browser) while the script waits::

    sign_in = await start_device_sign_in(config, storage)      # or start_device_sign_in_blocking
    print(f"Open {sign_in.verificationUri} and enter {sign_in.userCode}")
    client = await sign_in.wait()                              # or sign_in.waitBlocking()
    token = await client.getAccessToken("https://api.example.com")

The app must be a native app with the device flow enabled in Logto. The tokens go into
``storage`` exactly as a browser sign-in stores them, so the client returned by
:meth:`DeviceSignIn.wait` is an ordinary :class:`~logto_rs.LogtoClient` over that storage:
``getAccessToken``, ``getOrganizationToken``, ``fetchUserInfo``, ``getIdTokenClaims``, refresh
with rotation and ``signOut`` work as they do after a browser sign-in. Keep the storage (for a
person at a terminal, :func:`logto_rs.token_store.open_token_store`) and the next run builds a
``LogtoClient`` over it without signing in again.

The wait polls every ``interval`` seconds, 5 seconds more after each ``slow_down``. It ends with
:class:`~logto_rs.errors.LogtoDeviceSignInDeniedError` when the person denies the sign-in and
:class:`~logto_rs.errors.LogtoDeviceCodeExpiredError` when the code expires first. Cancelling it
(``asyncio`` task cancellation, or Ctrl-C during :meth:`DeviceSignIn.waitBlocking`) stops the
polling at once and writes nothing; once the tokens have arrived they are stored before the
cancellation is raised.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional

from . import _driver
from .client import BlockingLogtoClient, LogtoClient
from .config import LogtoConfig
from .storage import MemoryStorage, Storage

__all__ = ["DeviceSignIn", "start_device_sign_in", "start_device_sign_in_blocking"]


class DeviceSignIn:
    """A device sign-in waiting for the person: show them the code and the URI, then wait.

    Attributes:
        userCode: The code to enter on the verification page (e.g. ``WDJB-MJHT``).
        verificationUri: Where to enter it.
        verificationUriComplete: The verification URI with the code in it (for a link or a QR
            code), or ``None`` when the provider gave none.
        expiresAt: When the codes expire (aware UTC).
        interval: Seconds between two polls, as the provider asked.

    """

    __slots__ = (
        "userCode",
        "verificationUri",
        "verificationUriComplete",
        "expiresAt",
        "interval",
        "_client",
        "_device_code",
        "_expires_at",
        "_signed_in",
    )

    def __init__(self, client: LogtoClient, payload: dict[str, Any]) -> None:
        self._client = client
        self._device_code: str = payload["device_code"]
        self._expires_at = int(payload["expires_at"])
        self.userCode: str = payload["user_code"]
        self.verificationUri: str = payload["verification_uri"]
        self.verificationUriComplete: Optional[str] = payload.get("verification_uri_complete")
        self.expiresAt = datetime.fromtimestamp(self._expires_at, timezone.utc)
        self.interval: int = int(payload["interval"])
        # Once the tokens are stored the device code is spent: Logto revokes the whole grant
        # (signs the person out) when a used device code is presented again.
        self._signed_in = False

    @property
    def expiresIn(self) -> float:
        """Seconds until the codes expire (0 once they have)."""
        return max(0.0, (self.expiresAt - datetime.now(timezone.utc)).total_seconds())

    def _operation(self) -> Any:
        client = self._client
        return client._core.complete_device_sign_in(
            client._storage, self._device_code, self._expires_at, self.interval
        )

    async def wait(self) -> LogtoClient:
        """Wait for the person to approve; the tokens are then in the storage.

        Once it has returned, waiting again returns the same client at once: the device code is
        never presented again (Logto would sign the person out).

        Returns:
            The client over the storage, signed in.

        Raises:
            LogtoDeviceSignInDeniedError: the person denied the sign-in.
            LogtoDeviceCodeExpiredError: the code expired first.
            LogtoTokenValidationError: the ID token failed its checks (nothing is stored).

        """
        if not self._signed_in:
            await _driver.run(self._operation())
            self._signed_in = True
        return self._client

    def waitBlocking(self) -> BlockingLogtoClient:
        """Blocking :meth:`wait`, for code without an event loop; Ctrl-C stops it at once.

        Returns:
            The blocking client over the storage, signed in.

        """
        if not self._signed_in:
            _driver.run_blocking(self._operation())
            self._signed_in = True
        return self._client.blocking

    def __repr__(self) -> str:
        return (
            f"DeviceSignIn(userCode={self.userCode!r}, verificationUri={self.verificationUri!r}, "
            f"expiresAt={self.expiresAt.isoformat()!r}, interval={self.interval})"
        )


def _start(config: LogtoConfig, storage: Optional[Storage]) -> LogtoClient:
    return LogtoClient(config, storage=storage if storage is not None else MemoryStorage())


async def start_device_sign_in(
    config: LogtoConfig,
    storage: Optional[Storage] = None,
    organizationId: Optional[str] = None,
) -> DeviceSignIn:
    """Start a device sign-in for ``config``'s scopes and resources; nothing is stored yet.

    Args:
        config: The configuration of a native app with the device flow enabled in Logto.
        storage: Where the tokens go once the person approved (default: a new
            :class:`~logto_rs.MemoryStorage`).
        organizationId: Logto's ``organization_id`` for the sign-in, if any.

    Raises:
        LogtoConfigError: the provider has no device authorization endpoint (Logto before 1.38).
        LogtoOAuthError: the provider refused, e.g. an app without the device flow enabled.

    """
    client = _start(config, storage)
    payload: str = await _driver.run(client._core.start_device_sign_in(organizationId))
    return DeviceSignIn(client, json.loads(payload))


def start_device_sign_in_blocking(
    config: LogtoConfig,
    storage: Optional[Storage] = None,
    organizationId: Optional[str] = None,
) -> DeviceSignIn:
    """Blocking :func:`start_device_sign_in`."""
    client = _start(config, storage)
    payload: str = _driver.run_blocking(client._core.start_device_sign_in(organizationId))
    return DeviceSignIn(client, json.loads(payload))
