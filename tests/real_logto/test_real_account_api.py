"""The Account API (``client.account``) against a real Logto: a signed-in user reads and edits
their own name and profile, and what needs a verification record (username, password) is done
with Logto's verification API, by password. The Account Center is enabled for the test through
the generated Management API client, and its settings are put back afterwards.

Logto checks a new password against the Have I Been Pwned service; the test servers are offline,
so that check is turned off for the test (and put back afterwards).

Not exercised: changing the email or phone, which needs a verification code that an email or SMS
connector delivers (the test servers have none; Logto then refuses to send the code, and the
test checks that refusal arrives typed).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import REDIRECT_URI, RealLogto, _signin_module, config_for
from logto_rs import (
    LogtoApiAuthError,
    LogtoApiError,
    LogtoClient,
    LogtoM2MClient,
    LogtoNotAuthenticatedError,
    MemoryStorage,
)
from logto_rs.account import AccountClient, BlockingAccountClient
from logto_rs.management import BlockingManagementClient, ManagementClient

run = asyncio.run
EDITABLE = ("name", "avatar", "profile", "username", "password", "email", "phone", "customData")


@pytest.fixture
def management(m2m: LogtoM2MClient) -> BlockingManagementClient:
    return ManagementClient(m2m).blocking


@pytest.fixture
def account_center(management: BlockingManagementClient) -> Iterator[None]:
    """The Account Center on, with the fields the journey edits editable; then as it was."""
    before = management.getAccountCenterSettings()
    management.updateAccountCenterSettings({"enabled": True, "fields": {field: "Edit" for field in EDITABLE}})
    yield
    management.updateAccountCenterSettings(
        {"enabled": before.enabled, "fields": before.fields_.model_dump(exclude_none=True)}
    )


@pytest.fixture
def offline_password_policy(management: BlockingManagementClient) -> Iterator[None]:
    """No Have I Been Pwned lookup (the server has no internet access), then the policy as it was."""
    before = management.getSignInExp().passwordPolicy.model_dump(by_alias=True, exclude_unset=True)
    rejects = {**before.get("rejects", {}), "pwned": False}
    management.updateSignInExp({"passwordPolicy": {**before, "rejects": rejects}})
    yield
    management.updateSignInExp({"passwordPolicy": before})


@pytest.fixture
def person(management: BlockingManagementClient) -> Iterator[dict[str, Any]]:
    """A fresh user with a password, deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    password = f"Account-{tag}-Passw0rd!"
    user = management.createUser({"username": f"account_{tag}", "password": password, "name": "Before"})
    yield {"id": user.id, "username": f"account_{tag}", "password": password, "tag": tag}
    management.deleteUser(user.id)


def signed_in(logto: RealLogto, person: dict[str, Any]) -> LogtoClient:
    scopes = ["email", "phone", "custom_data", "identities"]
    client = LogtoClient(config_for(logto, "web", scopes=scopes, resources=[]), storage=MemoryStorage())

    async def sign_in() -> None:
        url = await client.signIn(REDIRECT_URI)
        callback = _signin_module().sign_in(url, person["username"], person["password"])
        await client.handleSignInCallback(callback)

    run(sign_in())
    return client


def test_a_user_edits_their_own_account(
    logto: RealLogto,
    account_center: None,
    offline_password_policy: None,
    person: dict[str, Any],
    management: BlockingManagementClient,
) -> None:
    client = signed_in(logto, person)
    account = client.account
    assert isinstance(account, AccountClient) and isinstance(client.blocking.account, BlockingAccountClient)

    me = run(account.getProfile())
    assert (me.id, me.username, me.name) == (person["id"], person["username"], "Before")

    # Name and profile: edited, read back, and seen by the Management API too.
    assert run(account.updateProfile({"name": "Ada Account"})).name == "Ada Account"
    run(account.updateOtherProfile({"givenName": "Ada", "familyName": "Lovelace", "nickname": "ada"}))
    me = client.blocking.account.getProfile()
    assert me.name == "Ada Account" and me.profile is not None
    assert (me.profile.givenName, me.profile.familyName, me.profile.nickname) == ("Ada", "Lovelace", "ada")
    assert management.getUser(person["id"]).profile.givenName == "Ada"

    # The password needs a verification record: without one Logto refuses, typed.
    new_password = f"Changed-{person['tag']}-Passw0rd!"
    with pytest.raises(LogtoApiAuthError) as refused:
        run(account.updatePassword({"password": new_password}))
    assert (refused.value.status, refused.value.error) == (401, "verification_record.permission_denied")
    assert new_password not in str(refused.value)
    with pytest.raises(LogtoApiError) as wrong:
        run(account.createVerificationByPassword({"password": "not-the-password"}))
    assert wrong.value.error and "not-the-password" not in str(wrong.value)

    # A record proves the current password; with it the password and the username change (1.42
    # asks a record for the username too), and the old password no longer verifies.
    record = run(account.createVerificationByPassword({"password": person["password"]}))
    verified = account.withVerification(record.verificationRecordId)
    assert record.verificationRecordId not in repr(verified) and record.verificationRecordId not in repr(
        record
    )
    verified.blocking.updatePassword({"password": new_password})
    new_username = f"renamed_{person['tag']}"
    assert run(verified.updateProfile({"username": new_username})).username == new_username
    assert management.getUser(person["id"]).username == new_username
    with pytest.raises(LogtoApiError):
        account.blocking.createVerificationByPassword({"password": person["password"]})
    assert account.blocking.createVerificationByPassword({"password": new_password}).verificationRecordId

    # An email needs a code that only an email connector can deliver: refused, typed.
    with pytest.raises(LogtoApiError) as no_connector:
        account.blocking.createVerificationByVerificationCode(
            {"identifier": {"type": "email", "value": f"account-{person['tag']}@example.com"}}
        )
    assert (no_connector.value.status, no_connector.value.error) == (501, "connector.not_found")


def test_without_a_session_nothing_is_sent(logto: RealLogto) -> None:
    client = LogtoClient(config_for(logto, "web"), storage=MemoryStorage())
    with pytest.raises(LogtoNotAuthenticatedError):
        client.blocking.account.getProfile()
