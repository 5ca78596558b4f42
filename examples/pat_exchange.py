"""Exchange a personal access token for an access token, as a script with no user session does.

Settings come from the environment: LOGTO_PAT (the personal access token), LOGTO_ENDPOINT,
LOGTO_APP_ID and LOGTO_APP_SECRET (an app with token exchange enabled; leave the secret unset for
a public app), and optionally LOGTO_RESOURCE and LOGTO_SCOPES (space-separated). Without
LOGTO_ENDPOINT it starts the development provider (tests/provider) and uses the seed user alice's
token. Nothing secret is printed: the result's repr leaves the token out.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

from logto_rs import LogtoConfig, LogtoInvalidGrantError, exchange_personal_access_token_blocking

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from provider_harness import Provider  # noqa: E402

SEED_PAT = "pat_alice_ci_0123456789abcdefABCDEF"


def exchange(config: LogtoConfig, pat: str, resource: Optional[str], scopes: list[str]) -> None:
    """Exchange ``pat`` once and print what came back."""
    try:
        result = exchange_personal_access_token_blocking(config, pat, resource=resource, scopes=scopes)
    except LogtoInvalidGrantError as error:
        sys.exit(f"the personal access token was refused (unknown, expired or revoked): {error.code}")
    print(f"exchanged for {resource or 'an opaque token'}: {result!r}")
    print(f"expires in {result.expiresIn:.0f} s; send it as 'Authorization: Bearer <token>'")


def main() -> None:
    """Exchange LOGTO_PAT at LOGTO_ENDPOINT, or the seed token at a fresh development provider."""
    resource = os.environ.get("LOGTO_RESOURCE") or None
    scopes = os.environ.get("LOGTO_SCOPES", "").split()
    endpoint = os.environ.get("LOGTO_ENDPOINT")
    if endpoint:
        secret = os.environ.get("LOGTO_APP_SECRET") or None
        config = LogtoConfig(endpoint=endpoint, appId=os.environ["LOGTO_APP_ID"], appSecret=secret)
        exchange(config, os.environ["LOGTO_PAT"], resource, scopes)
        return
    with Provider().start() as provider:
        config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
        exchange(config, SEED_PAT, resource or "https://api.example.com", scopes or ["read:products"])


if __name__ == "__main__":
    main()
