"""A machine-to-machine app: a token for an API resource, then the Management API.

Settings come from the environment: LOGTO_ENDPOINT, LOGTO_APP_ID and LOGTO_APP_SECRET (a
machine-to-machine app), LOGTO_RESOURCE and LOGTO_SCOPES (space-separated) for the API token, and
optionally LOGTO_USER_ID to list that user's personal access tokens (the app then needs a role
with the Management API's ``all`` scope). Without LOGTO_ENDPOINT it starts the development provider
(tests/provider) and uses its seed app. Nothing secret is printed: reprs leave tokens out.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Optional

from logto_rs import LogtoM2MClient, LogtoM2MConfig

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from provider_harness import Provider  # noqa: E402


async def run(config: LogtoM2MConfig, resource: str, scopes: list[str], user_id: Optional[str]) -> None:
    """Get an API token (twice: the second comes from the cache), then list a user's tokens."""
    client = LogtoM2MClient(config)
    token = await client.getAccessToken(resource, scopes)
    assert await client.getAccessToken(resource, scopes) == token  # cached until shortly before expiry
    print(f"token for {resource}: {token!r}")
    if user_id:
        print(f"personal access tokens of {user_id} (Management API {client.managementApiResource}):")
        for pat in await client.managementApi.listPersonalAccessTokens(user_id):
            print(f"  {pat.name}: created {pat.createdAt:%Y-%m-%d}, expires {pat.expiresAt or 'never'}")


def main() -> None:
    """Run against LOGTO_ENDPOINT, or against a freshly started development provider."""
    resource = os.environ.get("LOGTO_RESOURCE", "https://api.example.com")
    scopes = os.environ.get("LOGTO_SCOPES", "read:products").split()
    endpoint = os.environ.get("LOGTO_ENDPOINT")
    if endpoint:
        config = LogtoM2MConfig(
            endpoint=endpoint, appId=os.environ["LOGTO_APP_ID"], appSecret=os.environ["LOGTO_APP_SECRET"]
        )
        asyncio.run(run(config, resource, scopes, os.environ.get("LOGTO_USER_ID")))
        return
    with Provider().start() as provider:
        config = LogtoM2MConfig(endpoint=provider.endpoint, appId="m2m-app", appSecret="m2m-app-secret")
        asyncio.run(run(config, resource, scopes, "user-alice"))


if __name__ == "__main__":
    main()
