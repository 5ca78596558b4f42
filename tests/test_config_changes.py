"""A client reads its configuration on every call, as the official SDK does: a change to
``client.config`` (a field assigned, a list changed in place, another ``LogtoConfig``) is seen by
the next call, in the client and in all its views."""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import REDIRECT_URI, ClientFactory, run, sign_in
from logto_rs import LogtoConfig, LogtoConfigError, MemoryStorage
from provider_harness import Provider

API = "https://api.example.com"
BASE_SCOPES = "openid offline_access profile"


def authorization(url: str) -> dict[str, Any]:
    params = parse_qs(urlsplit(url).query)
    return {
        "scope": params["scope"][0],
        "resource": params.get("resource", []),
        "client_id": params["client_id"][0],
    }


def test_assigned_fields_are_seen_by_the_next_sign_in(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage())
    assert authorization(run(client.signIn(REDIRECT_URI)))["scope"] == BASE_SCOPES
    client.config.scopes = ["email", "read:products"]
    client.config.resources = [API]
    sign_in_url = authorization(run(client.signIn(REDIRECT_URI)))
    assert sign_in_url["scope"] == f"{BASE_SCOPES} email read:products"
    assert sign_in_url["resource"] == [API]
    # The blocking twin and every view share the client's configuration.
    assert authorization(client.blocking.signIn(REDIRECT_URI))["resource"] == [API]
    assert authorization(client.withStorage(MemoryStorage()).blocking.signIn(REDIRECT_URI))["resource"] == [
        API
    ]


def test_a_list_changed_in_place_is_seen_too(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=["email"])
    view = client.withStorage(MemoryStorage())
    client.config.scopes.append("phone")
    assert authorization(run(view.signIn(REDIRECT_URI)))["scope"] == f"{BASE_SCOPES} email phone"


def test_another_config_assigned_to_the_client(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage())
    view = client.withStorage(MemoryStorage())
    client.config = LogtoConfig(endpoint=provider.endpoint, appId="spa-app", scopes=["email"])
    assert client.config.appId == "spa-app" and view.config is client.config
    assert authorization(run(view.signIn(REDIRECT_URI)))["client_id"] == "spa-app"
    assert repr(client) == f"LogtoClient(endpoint={provider.endpoint!r}, appId='spa-app')"
    with pytest.raises(LogtoConfigError, match="must be a LogtoConfig, not dict"):
        client.config = {"appId": "web-app"}  # type: ignore[assignment]
    assert client.config.appId == "spa-app"


def test_a_refused_change_raises_and_changes_nothing(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=["email"])
    with pytest.raises(LogtoConfigError, match="prompt"):
        client.config.prompt = "bogus"
    with pytest.raises(LogtoConfigError):
        client.config.resources = ["not a uri"]
    assert client.config.prompt == "consent" and client.config.resources == []
    assert authorization(run(client.signIn(REDIRECT_URI)))["resource"] == []
    # A list changed in place is not validated by assignment: the next call refuses it.
    client.config.resources.append("not a uri")
    with pytest.raises(LogtoConfigError, match="not an absolute URI"):
        run(client.signIn(REDIRECT_URI))
    client.config.resources[0] = API
    assert authorization(run(client.signIn(REDIRECT_URI)))["resource"] == [API]


def test_the_access_token_margin_is_seen_by_the_cache(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage(), scopes=["read:products"], resources=[API])
    run(sign_in(client))
    token = run(client.getAccessToken(API))
    assert run(client.getAccessToken(API)) == token  # cached: its hour is far from over
    client.config.accessTokenMargin = 7200  # now every one-hour token is due for a refresh
    renewed = client.blocking.getAccessToken(API)
    assert renewed and renewed != token
    assert len(provider.requests(path="/oidc/token", grant_type="refresh_token")) == 2


def test_threads_calling_while_the_config_changes(make_client: ClientFactory) -> None:
    client = make_client(MemoryStorage())
    scope_sets = [["email"], ["phone"]]
    seen: set[str] = set()
    stop = threading.Event()

    def sign_ins() -> None:
        blocking = client.withStorage(MemoryStorage()).blocking
        while not stop.is_set():
            seen.add(authorization(blocking.signIn(REDIRECT_URI))["scope"])

    threads = [threading.Thread(target=sign_ins) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(40):
            client.config.scopes = scope_sets[round_ % 2]
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    # Every sign-in used one whole configuration, never a mix.
    assert seen <= {BASE_SCOPES, f"{BASE_SCOPES} email", f"{BASE_SCOPES} phone"}
    assert authorization(client.blocking.signIn(REDIRECT_URI))["scope"] == f"{BASE_SCOPES} phone"
