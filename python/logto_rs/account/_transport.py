"""How the Account API client reaches Logto: the signed-in user's access token, from the session."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Optional, TypeVar, Union

from .._core import CoreClient
from .._rest import RetryPolicy, Transport
from ..storage import Storage

if TYPE_CHECKING:
    from ..client import BlockingLogtoClient, LogtoClient

_Self = TypeVar("_Self", bound="AccountTransport")

VERIFICATION_HEADER = "logto-verification-id"
"""The header that carries a verification record's id to the calls that need one."""


class AccountTransport(Transport):
    """The Account API's calls, as the user signed in to a :class:`~logto_rs.LogtoClient`.

    Every call uses the session's resource-less access token (refreshed when it is due), read
    from the client's storage in the caller's thread and context. Logto grants the fields the
    token's scopes cover (``profile``, ``email``, ``phone``, ``identities``, ``custom_data``)
    and the Account Center's settings allow.

    Args:
        client: The signed-in client (``LogtoClient`` or its ``blocking`` twin).
        retry: How idempotent calls are retried after 429 and 5xx answers.

    """

    _core: CoreClient
    _storage: Storage
    _verification: Optional[str]

    def __init__(
        self, client: Union[LogtoClient, BlockingLogtoClient], *, retry: Optional[RetryPolicy] = None
    ) -> None:
        self._core = client._core
        self._endpoint: str = client.config.endpoint
        self._storage = client._storage
        self._connect(functools.partial(self._core.account_call, self._storage), retry)
        self._verification = None

    def __repr__(self) -> str:
        verified = ", verified" if self._verification else ""
        return f"{type(self).__name__}(endpoint={self._endpoint!r}{verified})"

    def withVerification(self: _Self, verificationRecordId: str) -> _Self:
        """The same client, sending ``verificationRecordId`` with every call.

        The calls that change what proves the user's identity (password, email, phone, MFA,
        identities, username) need a verified record: create one with
        ``createPasswordVerification`` (or a verification code) and pass its
        ``verificationRecordId`` here. The id is never shown in a ``repr``.
        """
        other = self._twin(type(self))
        other._verification = verificationRecordId
        return other

    def _headers(self) -> list[tuple[str, str]]:
        return [] if self._verification is None else [(VERIFICATION_HEADER, self._verification)]
