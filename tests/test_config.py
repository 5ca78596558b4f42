"""LogtoConfig: the official SDK's fields, validated on construction by the core."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from logto_rs import (
    AccessTokenVerifier,
    LogtoClient,
    LogtoConfig,
    LogtoConfigError,
    LogtoException,
    LogtoM2MConfig,
    UserInfoScope,
)


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
        {"endpoint": "http://tenant.logto.app"},  # plain http to a remote host
        {"endpoint": "http://192.168.1.20:3001"},
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


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:3001", "http://localhost:3001", "http://[::1]:3001"])
def test_plain_http_to_loopback_is_allowed(endpoint: str) -> None:
    assert LogtoConfig(endpoint=endpoint, appId="app").endpoint == endpoint


def test_plain_http_elsewhere_needs_the_development_opt_out() -> None:
    with pytest.raises(LogtoConfigError) as caught:
        LogtoConfig(endpoint="http://logto.internal:3001", appId="app")
    assert "https" in str(caught.value)
    assert LogtoConfig(endpoint="http://logto.internal:3001", appId="app", allowInsecureHttp=True)
    with pytest.raises(LogtoConfigError):
        LogtoM2MConfig(endpoint="http://logto.internal:3001", appId="a", appSecret="s")
    assert LogtoM2MConfig(
        endpoint="http://logto.internal:3001", appId="a", appSecret="s", allowInsecureHttp=True
    )
    with pytest.raises(LogtoConfigError):
        AccessTokenVerifier("http://logto.internal:3001", "https://api")
    assert AccessTokenVerifier("http://logto.internal:3001", "https://api", allowInsecureHttp=True)


SECRET = "s3cr3t-Value-9f8e7d6c5b4a"

SECRET_BEARING_MISTAKES: list[tuple[str, dict[str, Any]]] = [
    ("missing field", {"endpoint": "https://t.logto.app", "appSecret": SECRET}),
    (
        "unknown field",
        {"endpoint": "https://t.logto.app", "appId": "a", "appSecret": SECRET, "appSecrett": 1},
    ),
    ("wrong type elsewhere", {"endpoint": "https://t.logto.app", "appId": 7, "appSecret": SECRET}),
    ("wrong type of the secret", {"endpoint": "https://t.logto.app", "appId": "a", "appSecret": [SECRET]}),
    ("secret as a number", {"endpoint": "https://t.logto.app", "appId": "a", "appSecret": {"v": SECRET}}),
]


def shown(error: ValidationError) -> str:
    return "\n".join(
        [
            str(error),
            repr(error),
            error.json(),
            repr(error.errors()),
            repr(error.errors(include_context=True)),
        ]
    )


@pytest.mark.parametrize("model", [LogtoConfig, LogtoM2MConfig])
@pytest.mark.parametrize(
    ("mistake", "fields"), SECRET_BEARING_MISTAKES, ids=[m for m, _ in SECRET_BEARING_MISTAKES]
)
def test_no_config_error_contains_the_secret(model: Any, mistake: str, fields: dict[str, Any]) -> None:
    for attempt in (
        lambda: model(**fields),
        lambda: model.model_validate(fields),
        lambda: model.model_validate_json(json.dumps(fields)),
    ):
        with pytest.raises(ValidationError) as caught:
            attempt()
        text = shown(caught.value)
        assert SECRET not in text and SECRET[-6:] not in text, text
        assert caught.value.errors()[0]["loc"]  # the field is still named
    config = model(endpoint="https://t.logto.app", appId="a", appSecret=SECRET)
    with pytest.raises(ValidationError) as assigned:
        config.appSecret = [SECRET]
    assert SECRET not in shown(assigned.value)
