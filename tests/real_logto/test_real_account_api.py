"""The Account API (``client.account``) against a real Logto: a signed-in user reads and edits
their own name and profile, and what needs a verification record (username, password) is done
with Logto's verification API, by password.

The journey changes two of the server's global settings, through the generated Management API
client, and puts them back:

- the Account Center is switched on, with the fields the journey edits editable (the Account API
  refuses every call while it is off);
- the Have I Been Pwned check of new passwords is switched off (the test servers are offline, so
  Logto could not look a password up).

Each change registers its restore before it is made, so a journey that fails, even half-way
through setting up, still puts the setting back; the restore writes the whole setting as it was
read (so running it twice does no harm), retries a failed write, and reads the setting back to
check it. The real-Logto suite runs sequentially in one session, so the tests after this one see
the server as it was.

Not exercised: changing the email or phone, which needs a verification code that an email or SMS
connector delivers (the test servers have none; Logto then refuses to send the code, and the
test checks that refusal arrives typed).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from conftest import REDIRECT_URI, RealLogto, _signin_module, config_for
from logto_rs import (
    LogtoApiAuthError,
    LogtoApiError,
    LogtoClient,
    LogtoException,
    LogtoM2MClient,
    LogtoNotAuthenticatedError,
    MemoryStorage,
)
from logto_rs.account import AccountClient, BlockingAccountClient
from logto_rs.management import BlockingManagementClient, ManagementClient

run = asyncio.run
T = TypeVar("T")
EDITABLE = ("name", "avatar", "profile", "username", "password", "email", "phone", "customData")


@pytest.fixture
def management(m2m: LogtoM2MClient) -> BlockingManagementClient:
    return ManagementClient(m2m).blocking


def changed_for_the_test(
    addfinalizer: Callable[[Callable[[], object]], None],
    read: Callable[[], T],
    write: Callable[[T], object],
    changed: T,
) -> None:
    """Write ``changed`` now and what ``read`` answered back at teardown, whatever happens between.

    The restore is registered before the change (a change that fails half-way is undone too),
    writes the whole setting (so it may run again), is tried up to three times, and checks that
    the server holds the setting as it was.
    """
    before = read()

    def restore() -> None:
        for attempt in range(3):
            try:
                write(before)
                break
            except LogtoException:
                if attempt == 2:
                    raise
                time.sleep(1)
        assert read() == before, "the server's setting was not put back"

    addfinalizer(restore)
    write(changed)


@pytest.fixture
def account_center(request: pytest.FixtureRequest, management: BlockingManagementClient) -> None:
    """The Account Center on, with the fields the journey edits editable; then as it was."""

    def read() -> dict[str, Any]:
        settings = management.getAccountCenterSettings()
        # A field Logto does not list is off: naming it keeps the restore whole.
        fields = {name: "Off" for name in EDITABLE} | settings.fields_.model_dump(exclude_none=True)
        return {"enabled": settings.enabled, "fields": fields}

    def write(settings: dict[str, Any]) -> None:
        management.updateAccountCenterSettings(settings)

    changed = {"enabled": True, "fields": {**read()["fields"], **{name: "Edit" for name in EDITABLE}}}
    changed_for_the_test(request.addfinalizer, read, write, changed)


@pytest.fixture
def offline_password_policy(request: pytest.FixtureRequest, management: BlockingManagementClient) -> None:
    """No Have I Been Pwned lookup (the server has no internet access), then the policy as it was."""

    def read() -> dict[str, Any]:
        policy = management.getSignInExp().passwordPolicy
        return policy.model_dump(by_alias=True, exclude_unset=True)

    def write(policy: dict[str, Any]) -> None:
        management.updateSignInExp({"passwordPolicy": policy})

    policy = read()
    changed_for_the_test(
        request.addfinalizer,
        read,
        write,
        {**policy, "rejects": {**policy.get("rejects", {}), "pwned": False}},
    )


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


def test_a_change_that_fails_half_way_is_put_back_and_the_restore_may_run_twice(
    management: BlockingManagementClient,
) -> None:
    restores: list[Callable[[], object]] = []

    def read() -> bool:
        return management.getAccountCenterSettings().enabled

    def write(enabled: bool) -> None:
        management.updateAccountCenterSettings({"enabled": enabled})
        if enabled != before:
            raise RuntimeError("the step after the change failed")

    before = read()
    try:
        with pytest.raises(RuntimeError):
            changed_for_the_test(restores.append, read, write, not before)
        assert read() is (not before) and len(restores) == 1
        restores[0]()
        restores[0]()
        assert read() is before
    finally:
        management.updateAccountCenterSettings({"enabled": before})
