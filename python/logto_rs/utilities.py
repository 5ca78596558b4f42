"""The official ``logto`` package's ``utilities`` module, with the same names."""

from __future__ import annotations

import base64
from typing import Any

__all__ = ["OrganizationUrnPrefix", "buildOrganizationUrn", "removeFalsyKeys", "urlsafeEncode"]

OrganizationUrnPrefix = "urn:logto:organization:"
"""The prefix of Logto organization URNs."""


def urlsafeEncode(data: bytes) -> str:
    """``data`` in unpadded base64url."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def removeFalsyKeys(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` without the keys whose values are falsy."""
    return {key: value for key, value in data.items() if value}


def buildOrganizationUrn(organizationId: str) -> str:
    """``urn:logto:organization:<organizationId>``."""
    return f"{OrganizationUrnPrefix}{organizationId}"
