"""LogtoConfig: the official SDK's fields, validated on construction by the core."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from logto_rs import LogtoClient, LogtoConfig, LogtoConfigError, LogtoException, UserInfoScope


def test_reserved_scopes_and_the_organizations_resource() -> None:
    config = LogtoConfig(
        endpoint="https://tenant.logto.app/",
        appId="app",
        scopes=[UserInfoScope.email, "urn:logto:scope:organizations", UserInfoScope.custom_data],
    )
    assert config.scopes == ["email", "urn:logto:scope:organizations", "custom_data"]
    core = LogtoClient(config)._core
    assert core.scopes == [
        "openid",
        "offline_access",
        "profile",
        "email",
        "urn:logto:scope:organizations",
        "custom_data",
    ]
    assert core.resources == ["urn:logto:resource:organizations"]
    # The enum and its string value are interchangeable (the official SDK's W6 bug).
    assert UserInfoScope.organizations == "urn:logto:scope:organizations"


@pytest.mark.parametrize(
    "fields",
    [
        {"endpoint": "not a url"},
        {"endpoint": "ftp://tenant.logto.app"},
        {"endpoint": "https://user:pass@tenant.logto.app"},
        {"appId": "  "},
        {"appSecret": ""},
        {"prompt": "always"},
        {"prompt": "none login"},
        {"scopes": ["two words"]},
        {"resources": ["relative/path"]},
        {"requestTimeout": 0},
        {"requestTimeout": -1},
    ],
)
def test_invalid_configuration_raises_logto_config_error(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"endpoint": "https://tenant.logto.app", "appId": "app"}
    with pytest.raises(LogtoConfigError) as caught:
        LogtoConfig(**{**base, **fields})
    assert isinstance(caught.value, LogtoException)
    assert caught.value.code == "config.invalid"


def test_types_are_checked_by_pydantic() -> None:
    with pytest.raises(ValidationError):
        LogtoConfig(endpoint="https://t", appId=None)  # type: ignore[arg-type]


def test_prompt_as_a_list_and_assignment_is_validated() -> None:
    config = LogtoConfig(endpoint="https://t.logto.app", appId="app", prompt=["login", "consent"])  # type: ignore[arg-type]
    assert config.prompt == "login consent"
    with pytest.raises(LogtoConfigError):
        config.endpoint = "nope"


def test_secret_is_not_in_the_repr() -> None:
    config = LogtoConfig(endpoint="https://t.logto.app", appId="app", appSecret="very-secret-value")
    assert "very-secret-value" not in repr(config)
    assert "very-secret-value" not in str(config)
    assert "very-secret-value" not in repr(LogtoClient(config))
