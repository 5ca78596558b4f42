"""The Flask demo's flow as a script: sign in, claims, userinfo, organization tokens, sign out.

Starts the project's Logto-compatible development provider (tests/provider) on 127.0.0.1, signs
the demo user in through the real authorization-code + PKCE flow (the provider's login form is
submitted headlessly), prints the verified ID-token claims, the userinfo, and a verified token
for each of the user's organizations, then signs out. Set LOGTO_ENDPOINT, LOGTO_APP_ID and
LOGTO_APP_SECRET to use a real Logto tenant instead: you then sign in in a browser and paste the
URL it was sent back to.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from logto_rs import LogtoClient, LogtoConfig, LogtoOAuthError, MemoryStorage, UserInfoScope

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from provider_harness import Provider, complete_sign_in  # noqa: E402

REDIRECT_URI = "http://127.0.0.1/callback"
DEMO_USER = ("alice", "alice-password")


async def demo(endpoint: str, app_id: str, app_secret: str, headless: bool) -> None:
    """Run sign-in → callback → claims → sign-out and print each step."""
    config = LogtoConfig(
        endpoint=endpoint,
        appId=app_id,
        appSecret=app_secret,
        scopes=[
            UserInfoScope.email,
            UserInfoScope.custom_data,
            UserInfoScope.identities,
            UserInfoScope.roles,
            UserInfoScope.organizations,
            UserInfoScope.organization_roles,
            "read:members",
        ],
    )
    client = LogtoClient(config, storage=MemoryStorage())
    url = await client.signIn(REDIRECT_URI)
    print(f"1. sign-in URL: {url[:100]}…")
    if not headless:
        print("   Open it in a browser, sign in, then paste the URL you were redirected to:")
        callback = input("   callback URL> ").strip()
    else:
        callback = complete_sign_in(url, REDIRECT_URI, username=DEMO_USER[0], password=DEMO_USER[1])
        print(f"2. signed in as {DEMO_USER[0]!r} (password {DEMO_USER[1]!r}) on the provider's login page")
    await client.handleSignInCallback(callback)
    claims = client.getIdTokenClaims()
    print(f"3. authenticated: {client.isAuthenticated()}; ID token claims:")
    print(claims.model_dump_json(indent=2, exclude_unset=True))
    info = await client.fetchUserInfo()
    print("4. userinfo:")
    print(info.model_dump_json(indent=2, exclude_unset=True))
    print("5. organization tokens (verified):")
    for organization_id in info.organizations or []:
        try:
            token = await client.getOrganizationTokenClaims(organization_id, verify=True)
            print(f"   {organization_id}: aud {token.aud}, scopes {token.scope or '(none)'}")
        except LogtoOAuthError as error:
            print(f"   {organization_id}: {error.code}")
    print(f"6. sign-out URL: {(await client.signOut('http://127.0.0.1/signed-out'))[:100]}…")
    print(f"7. authenticated: {client.isAuthenticated()}")


def main() -> None:
    """Run the demo against LOGTO_ENDPOINT, or against a freshly started development provider."""
    endpoint = os.environ.get("LOGTO_ENDPOINT")
    if endpoint:
        app_id = os.environ["LOGTO_APP_ID"]
        asyncio.run(demo(endpoint, app_id, os.environ.get("LOGTO_APP_SECRET", ""), headless=False))
        return
    with Provider().start() as provider:
        print(f"Logto-compatible provider on {provider.endpoint} (demo user {DEMO_USER[0]} / {DEMO_USER[1]})")
        asyncio.run(demo(provider.endpoint, "web-app", "web-app-secret", headless=True))


if __name__ == "__main__":
    main()
