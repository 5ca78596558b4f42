"""What the token-exchange tests share, against either server: reading impersonation results.

The verifier learns to accept impersonation tokens (``allowImpersonation``) and to declare
``AccessTokenClaims.act`` separately; these helpers work with either version.
"""

from __future__ import annotations

import inspect
from typing import Any

from logto_rs import AccessTokenClaims, AccessTokenVerifier


def impersonation_verifier(endpoint: str, audience: str) -> AccessTokenVerifier:
    """A verifier for ``audience`` that takes impersonation tokens (with ``act``)."""
    parameters = inspect.signature(AccessTokenVerifier).parameters
    options: dict[str, Any] = {"allowImpersonation": True} if "allowImpersonation" in parameters else {}
    return AccessTokenVerifier(endpoint, audience, **options)


def actor_of(claims: AccessTokenClaims) -> str:
    """``act.sub`` of verified claims (an extra dict, or the declared model)."""
    act: Any = claims.act
    sub: str = act["sub"] if isinstance(act, dict) else act.sub
    return sub
