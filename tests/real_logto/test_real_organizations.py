"""Organization membership is Logto's to decide: a user added to an organization after signing in
gets its token at once, and a removed member gets no new token once the cached one has expired.

The user is a new one, made through the Management API with the provisioned m2m app, as a new
user of an app would be; membership changes go through the same API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import pytest

from conftest import REDIRECT_URI, ClientFactory, CoreLog, RealLogto, experience_sign_in_as, jwt_parts
from logto_rs import LogtoInvalidGrantError, LogtoOAuthError, MemoryStorage

run = asyncio.run
PASSWORD = "Carol-Passw0rd!"


class ManagementApi:
    def __init__(self, logto: RealLogto, token: Callable[[], str]) -> None:
        self.base = logto.endpoint + "/api"
        self.token = token

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method,
            self.base + path,
            json=body,
            headers={"authorization": f"Bearer {self.token()}"},
            timeout=10,
        )
        assert response.is_success, f"{method} {path}: {response.status_code} {response.text[:300]}"
        # Logto 1.37.1 answers some writes with a plain-text "Created".
        return (
            response.json()
            if response.headers.get("content-type", "").startswith("application/json")
            else None
        )


@pytest.fixture
def api(logto: RealLogto, m2m_token: Callable[[], str]) -> ManagementApi:
    return ManagementApi(logto, m2m_token)


@pytest.fixture
def new_user(api: ManagementApi) -> Iterator[tuple[str, str]]:
    """(username, id) of a user made for this test, in no organization; deleted afterwards."""
    username = f"carol{time.time_ns()}"
    user = api("POST", "/users", {"username": username, "password": PASSWORD, "name": "Carol"})
    try:
        yield username, user["id"]
    finally:
        api("DELETE", f"/users/{user['id']}")


def add_member(api: ManagementApi, logto: RealLogto, user_id: str) -> None:
    organization = logto.organization_id
    roles = api("GET", "/organization-roles?page_size=100")
    member = next(role for role in roles if role["name"] == "member")
    api("POST", f"/organizations/{organization}/users", {"userIds": [user_id]})
    api(
        "POST",
        f"/organizations/{organization}/users/{user_id}/roles",
        {"organizationRoleIds": [member["id"]]},
    )


@pytest.mark.parametrize("app", ["web", "native"])
def test_a_user_added_to_an_organization_after_sign_in_gets_its_token_at_once(
    logto: RealLogto,
    make_client: ClientFactory,
    api: ManagementApi,
    new_user: tuple[str, str],
    app: str,
    core_log: Callable[[], CoreLog],
) -> None:
    username, user_id = new_user
    storage = MemoryStorage()
    client = make_client(app, storage=storage)
    url = run(client.signIn(REDIRECT_URI))
    run(client.handleSignInCallback(experience_sign_in_as(url, username, PASSWORD)))
    assert client.getIdTokenClaims().organizations == []  # signed in before joining

    add_member(api, logto, user_id)
    log = core_log()
    token = run(client.getOrganizationToken(logto.organization_id))
    assert token is not None
    claims = jwt_parts(token)[1]
    assert claims["aud"] == f"urn:logto:organization:{logto.organization_id}" and claims["sub"] == user_id
    assert "read:members" in claims["scope"].split()
    assert log.token_requests() == 1

    # Removed: the cached token is served until it expires; after that, Logto refuses a new one.
    api("DELETE", f"/organizations/{logto.organization_id}/users/{user_id}")
    assert run(client.getOrganizationToken(logto.organization_id)) == token
    expired = make_client(app, storage=storage, accessTokenMargin=claims["exp"] - time.time() + 60)
    with pytest.raises(LogtoOAuthError) as refused:
        run(expired.getOrganizationToken(logto.organization_id))
    assert not isinstance(refused.value, LogtoInvalidGrantError)
    assert (refused.value.code, refused.value.status) == ("oauth.access_denied", 403)
    assert client.isAuthenticated() and run(client.getAccessToken(logto.resource)) is not None
