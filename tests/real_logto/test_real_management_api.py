"""The generated Management API client against a real Logto: a CRUD journey over resources and
scopes, roles, users, organizations (members, roles, invitations) and applications, which cleans
up after itself, also when a step fails; Logto's errors come back typed with their code.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from conftest import RealLogto
from logto_rs import LogtoApiConflictError, LogtoApiNotFoundError, LogtoConfigError, LogtoM2MClient
from logto_rs.management import BlockingManagementClient, ManagementClient, Page, iterate_pages_blocking
from logto_rs.management.models import Organization, Role, User

run = asyncio.run


class Cleanup:
    """Undo steps, run last-in first-out at teardown whatever happened; each runs even if
    another failed, and a resource already gone (404) counts as cleaned up."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], Any]] = []

    def __call__(self, step: Callable[[], Any]) -> None:
        self.steps.append(step)

    def run(self) -> list[BaseException]:
        failures: list[BaseException] = []
        for step in reversed(self.steps):
            try:
                step()
            except LogtoApiNotFoundError:
                pass
            except Exception as error:  # noqa: BLE001 (every step must get its chance)
                failures.append(error)
        return failures


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    steps = Cleanup()
    yield steps
    assert steps.run() == []


@pytest.fixture
def api(m2m: LogtoM2MClient) -> ManagementClient:
    return ManagementClient(m2m)


def sweep(sync: BlockingManagementClient, tag: str) -> None:
    """Delete whatever carries ``tag``: also what a step created but could not register (its
    answer failed), since every name of the journey holds the tag."""
    for application in sync.listApplications():
        if tag in application.name:
            sync.deleteApplication(application.id)
    for organization in sync.listOrganizations(q=tag):
        sync.deleteOrganization(organization.id)
    for organization_role in sync.listOrganizationRoles(q=tag):
        sync.deleteOrganizationRole(organization_role.id)
    for user in sync.listUsers(search_params={"search": f"%{tag}%"}):
        sync.deleteUser(user.id)
    for role in sync.listRoles(search_params={"search": f"%{tag}%"}):
        sync.deleteRole(role.id)
    for resource in sync.listResources():
        if tag in resource.indicator:
            sync.deleteResource(resource.id)


def test_crud_journey(logto: RealLogto, api: ManagementClient, cleanup: Cleanup) -> None:
    sync = api.blocking
    tag = uuid.uuid4().hex[:8]
    cleanup(lambda: sweep(sync, tag))  # runs last

    # An API resource with a scope.
    resource = sync.createResource(
        {"name": f"Journey {tag}", "indicator": f"https://journey-{tag}.example.com"}
    )
    cleanup(lambda: sync.deleteResource(resource.id))
    scope = sync.createResourceScope(resource.id, {"name": f"read:{tag}", "description": "Read"})
    assert [s.name for s in sync.listResourceScopes(resource.id)] == [f"read:{tag}"]
    renamed = sync.updateResource(resource.id, {"name": f"Journey {tag} renamed"})
    assert sync.getResource(resource.id).name == renamed.name == f"Journey {tag} renamed"

    # A user role granting that scope.
    role = sync.createRole(
        {"name": f"journey-{tag}", "description": "A journey role", "scopeIds": [scope.id]}
    )
    cleanup(lambda: sync.deleteRole(role.id))
    assert isinstance(role, Role) and [s.id for s in sync.listRoleScopes(role.id)] == [scope.id]
    with pytest.raises(LogtoApiConflictError) as taken:
        sync.createRole({"name": f"journey-{tag}", "description": "again"})
    assert taken.value.code.startswith("api.") and taken.value.status == 422

    # Users: create, read, update, search with pages, roles.
    password = f"Journey-{tag}-Passw0rd!"
    users = []
    for n in range(3):
        user = sync.createUser(
            {"username": f"journey_{tag}_{n}", "password": password, "name": f"Journey {n}"}
        )
        cleanup(lambda user=user: sync.deleteUser(user.id))
        users.append(user)
    first = users[0]
    assert isinstance(first, User) and first.hasPassword is not False and password not in repr(first)
    updated = sync.updateUser(first.id, {"name": "Ada Journey", "profile": {"nickname": "ada"}})
    assert (updated.name, updated.profile.nickname) == ("Ada Journey", "ada")
    assert sync.getUser(first.id).name == "Ada Journey"
    search = {"search": f"%journey_{tag}%"}
    page = sync.listUsers(page=1, page_size=2, search_params=search)
    assert isinstance(page, Page) and page.total == 3 and len(page) == 2
    every = list(iterate_pages_blocking(lambda n: sync.listUsers(page=n, page_size=2, search_params=search)))
    assert sorted(u.id for u in every) == sorted(u.id for u in users)
    sync.assignUserRoles(first.id, {"roleIds": [role.id]})
    assert [r.id for r in sync.listUserRoles(first.id)] == [role.id]
    assert first.id in [u.id for u in sync.listRoleUsers(role.id)]
    sync.deleteUserRole(first.id, role.id)
    assert list(sync.listUserRoles(first.id)) == []

    # An organization with members, an organization role and an invitation (awaitable twin).
    organization = run(api.createOrganization({"name": f"Journey {tag}", "description": "A journey"}))
    cleanup(lambda: sync.deleteOrganization(organization.id))
    assert isinstance(organization, Organization)
    organization_role = run(api.createOrganizationRole({"name": f"journey-member-{tag}"}))
    cleanup(lambda: sync.deleteOrganizationRole(organization_role.id))
    run(api.addOrganizationUsers(organization.id, {"userIds": [users[0].id, users[1].id]}))
    run(
        api.assignOrganizationRolesToUser(
            organization.id, users[0].id, {"organizationRoleIds": [organization_role.id]}
        )
    )
    members = {member.id: member for member in run(api.listOrganizationUsers(organization.id))}
    assert set(members) == {users[0].id, users[1].id}
    assert [r.id for r in members[users[0].id].organizationRoles] == [organization_role.id]
    assert members[users[1].id].organizationRoles == []
    run(api.deleteOrganizationUser(organization.id, users[1].id))
    assert [m.id for m in run(api.listOrganizationUsers(organization.id))] == [users[0].id]
    expires = int((time.time() + 3600) * 1000)
    invitation = sync.createOrganizationInvitation(
        {
            "inviterId": users[0].id,
            "invitee": f"journey-{tag}@example.com",
            "organizationId": organization.id,
            "expiresAt": expires,
            "organizationRoleIds": [organization_role.id],
        }
    )
    cleanup(lambda: sync.deleteOrganizationInvitation(invitation.id))
    assert invitation.status == "Pending" and [r.id for r in invitation.organizationRoles] == [
        organization_role.id
    ]
    listed = sync.listOrganizationInvitations(organizationId=organization.id)
    assert [i.id for i in listed] == [invitation.id]
    assert sync.getOrganizationInvitation(invitation.id).invitee == f"journey-{tag}@example.com"
    sync.deleteOrganizationInvitation(invitation.id)
    assert list(sync.listOrganizationInvitations(organizationId=organization.id)) == []

    # An application: machine-to-machine, with the role replaced by a machine role.
    application = sync.createApplication({"name": f"Journey {tag}", "type": "MachineToMachine"})
    cleanup(lambda: sync.deleteApplication(application.id))
    assert application.type == "MachineToMachine"
    assert sync.updateApplication(application.id, {"description": "updated"}).description == "updated"
    machine_role = sync.createRole(
        {"name": f"journey-m2m-{tag}", "description": "m2m", "type": "MachineToMachine"}
    )
    cleanup(lambda: sync.deleteRole(machine_role.id))
    sync.assignApplicationRoles(application.id, {"roleIds": [machine_role.id]})
    assert [r.id for r in sync.listApplicationRoles(application.id)] == [machine_role.id]
    assert application.id in [a.id for a in sync.listApplications(types=["MachineToMachine"])]

    # Deleting really deletes: then Logto answers 404, typed.
    sync.deleteApplication(application.id)
    with pytest.raises(LogtoApiNotFoundError) as gone:
        sync.getApplication(application.id)
    assert gone.value.status == 404 and gone.value.error == "entity.not_exists_with_id"


def test_a_body_logto_would_refuse_is_refused_before_sending(logto: RealLogto, api: ManagementClient) -> None:
    with pytest.raises(LogtoConfigError) as refused:
        api.blocking.createUser({"username": "x", "password": "Secret-Passw0rd-value", "unknownField": 1})
    assert "unknownField" in str(refused.value) and "Secret-Passw0rd-value" not in str(refused.value)
