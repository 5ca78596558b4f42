"""Logto's Management API, every operation, typed: :class:`ManagementClient`.

Generated from Logto's OpenAPI document (``tools/generate_api_clients.py``): one method per
operation, named after its ``operationId`` (``GetUser`` is :meth:`ManagementClient.getUser`), with
pydantic models for bodies and answers (:mod:`logto_rs.management.models`). It calls Logto with
a machine-to-machine app's Management API token, on the SDK's one HTTP stack::

    from logto_rs import LogtoM2MClient, LogtoM2MConfig
    from logto_rs.management import ManagementClient

    m2m = LogtoM2MClient(LogtoM2MConfig(endpoint=..., appId=..., appSecret=...))
    api = ManagementClient(m2m)
    user = await api.createUser({"username": "ada", "password": "..."})
    users = await api.listUsers(page=1, page_size=50)     # a Page: a list with .total

Errors are :class:`~logto_rs.LogtoApiError` subclasses carrying Logto's ``code`` (``error``) and
``message`` (``description``); a body that does not fit its model is a
:class:`~logto_rs.LogtoConfigError` before anything is sent.
"""

from .._rest import Page, RetryPolicy, iterate_pages, iterate_pages_blocking
from . import models
from .client import LOGTO_VERSION, OPERATIONS, BlockingManagementClient, ManagementClient

__all__ = [
    "ManagementClient",
    "BlockingManagementClient",
    "RetryPolicy",
    "Page",
    "iterate_pages",
    "iterate_pages_blocking",
    "models",
    "OPERATIONS",
    "LOGTO_VERSION",
]
