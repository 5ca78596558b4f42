"""Logto's Account API (``/api/my-account``): the signed-in user's own account, typed.

``client.account`` of a signed-in :class:`~logto_rs.LogtoClient` (``client.blocking.account``
blocks) is an :class:`AccountClient`: the profile, username, email and phone, password, MFA
factors and identities, with the session's access token. Generated from Logto's OpenAPI
document like :mod:`logto_rs.management`, with the same models, errors and retries::

    account = client.account
    me = await account.getProfile()
    await account.updateProfile({"name": "Ada"})
    record = await account.createVerificationByPassword({"password": "..."})
    await account.withVerification(record.verificationRecordId).updatePassword({"password": "..."})

Logto must have the Account Center enabled (``PATCH /api/account-center``, e.g. with
:meth:`~logto_rs.management.ManagementClient.updateAccountCenterSettings`), and the fields the
app wants to edit set to ``Edit`` there.
"""

from .._rest import Page, RetryPolicy
from . import models
from ._transport import VERIFICATION_HEADER
from .client import LOGTO_VERSION, OPERATIONS, AccountClient, BlockingAccountClient

__all__ = [
    "AccountClient",
    "BlockingAccountClient",
    "RetryPolicy",
    "Page",
    "models",
    "OPERATIONS",
    "LOGTO_VERSION",
    "VERIFICATION_HEADER",
]
