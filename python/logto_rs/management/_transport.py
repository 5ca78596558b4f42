"""How the Management API client reaches Logto: a machine-to-machine app's Management API token."""

from __future__ import annotations

from typing import Optional, Union

from .._core import MachineClient, Operation
from .._rest import RetryPolicy
from ..machine import LogtoM2MConfig, _M2MBase


class ManagementTransport:
    """The Management API's calls, authenticated by a :class:`~logto_rs.LogtoM2MClient`.

    Args:
        client: The machine-to-machine client (its token cache and single flight serve every
            call), or its configuration. The app needs a role with the Management API's ``all``
            scope.
        retry: How idempotent calls are retried after 429 and 5xx answers (default:
            :class:`~logto_rs.management.RetryPolicy`'s defaults).

    """

    _core: MachineClient
    _retry: tuple[int, float, float]

    def __init__(
        self, client: Union[_M2MBase, LogtoM2MConfig], *, retry: Optional[RetryPolicy] = None
    ) -> None:
        self._core = client._core if isinstance(client, _M2MBase) else MachineClient(client)
        self._retry = (retry or RetryPolicy())._core_args()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resource={self._core.management_api_resource!r})"

    def _headers(self) -> list[tuple[str, str]]:
        return []

    def _operation(
        self,
        method: str,
        segments: list[str],
        query: list[tuple[str, str]],
        body: Optional[str],
        headers: list[tuple[str, str]],
    ) -> Operation:
        return self._core.management_call(method, segments, query, body, headers, self._retry)
