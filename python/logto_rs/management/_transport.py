"""How the Management API client reaches Logto: a machine-to-machine app's Management API token."""

from __future__ import annotations

from typing import Optional, Union

from .._core import MachineClient
from .._rest import RetryPolicy, Transport
from ..machine import LogtoM2MConfig, _M2MBase


class ManagementTransport(Transport):
    """The Management API's calls, authenticated by a :class:`~logto_rs.LogtoM2MClient`.

    Args:
        client: The machine-to-machine client (its token cache and single flight serve every
            call), or its configuration. The app needs a role with the Management API's ``all``
            scope.
        retry: How idempotent calls are retried after 429 and 5xx answers (default:
            :class:`~logto_rs.management.RetryPolicy`'s defaults).

    """

    _core: MachineClient

    def __init__(
        self, client: Union[_M2MBase, LogtoM2MConfig], *, retry: Optional[RetryPolicy] = None
    ) -> None:
        self._attach(client._core if isinstance(client, _M2MBase) else MachineClient(client), retry)

    def _attach(self, core: MachineClient, retry: Optional[RetryPolicy]) -> None:
        """Call through ``core``: its token cache and single flight serve every call."""
        self._core = core
        self._connect(core.management_call, retry)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resource={self._core.management_api_resource!r})"
