"""Every kind of SDK object, built against the development provider, and one call of each.

Used by the deployment tests' child scripts (fork, exit). The provider's endpoint and a refresh
token of the never-rotating web app come from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from logto_rs import (
    AccessTokenVerifier,
    LogtoClient,
    LogtoConfig,
    LogtoM2MClient,
    LogtoM2MConfig,
    ManagementApi,
    MemoryStorage,
)

API = "https://api.example.com"


@dataclass
class Objects:
    client: LogtoClient
    m2m: LogtoM2MClient
    management: ManagementApi
    verifier: AccessTokenVerifier
    unused_verifier: AccessTokenVerifier


def session(refresh_token: str) -> MemoryStorage:
    """A signed-in session of the never-rotating web app, holding only its refresh token."""
    storage = MemoryStorage()
    storage.set("refreshToken", refresh_token)
    return storage


def build(refresh_token: str) -> Objects:
    endpoint = os.environ["LOGTO_ENDPOINT"]
    client = LogtoClient(
        LogtoConfig(
            endpoint=endpoint, appId="web-no-rotate", appSecret="web-no-rotate-secret", resources=[API]
        ),
        storage=session(refresh_token),
    )
    m2m = LogtoM2MClient(LogtoM2MConfig(endpoint=endpoint, appId="m2m-app", appSecret="m2m-app-secret"))
    return Objects(
        client=client,
        m2m=m2m,
        management=m2m.managementApi,
        verifier=AccessTokenVerifier(endpoint, API),
        unused_verifier=AccessTokenVerifier(endpoint, API),
    )


async def use(objects: Objects, verifier: AccessTokenVerifier) -> None:
    """One network call of each object (awaited); raises if any fails."""
    await objects.client.clearAccessToken()
    user_token = await objects.client.getAccessToken(API)
    assert user_token
    machine = await objects.m2m.getAccessToken(API)
    assert machine.accessToken
    await objects.management.listPersonalAccessTokens("user-alice")
    claims = await verifier.verify(user_token)
    assert claims.aud == API


def use_blocking(objects: Objects, verifier: AccessTokenVerifier) -> None:
    """The same calls through the blocking twins."""
    client = objects.client.blocking
    client.clearAccessToken()
    user_token = client.getAccessToken(API)
    assert user_token
    assert objects.m2m.blocking.getAccessToken(API).accessToken
    objects.m2m.blocking.managementApi.listPersonalAccessTokens("user-alice")
    assert verifier.blocking.verify(user_token).aud == API
