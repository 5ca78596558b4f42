"""``client.account``: the Account API is called as the signed-in user, with the session's own
resource-less access token read from the client's storage, in the caller's thread (a Flask
session works). The development provider serves ``GET /api/my-account`` only; other Account API
paths get Logto's 404 ``guard.invalid_path``, typed. Its request log shows which token came. The
whole Account API is exercised against real Logto in tests/real_logto/test_real_account_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from conftest import ClientFactory, run, sign_in
from logto_rs import LogtoApiNotFoundError, LogtoConfig, LogtoConfigError, LogtoNotAuthenticatedError
from logto_rs.account import VERIFICATION_HEADER, AccountClient, BlockingAccountClient, RetryPolicy
from logto_rs.flask import FlaskSessionStorage, LogtoFlask
from provider_harness import Provider, complete_sign_in, token_hash

HOST = "127.0.0.1"


def account_requests(provider: Provider) -> list[dict[str, Any]]:
    return [r for r in provider.requests() if r["path"].startswith("/api/")]


def test_calls_carry_the_sessions_access_token(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    run(sign_in(client))
    token = run(client.getAccessToken())
    assert token is not None
    me = run(client.account.getProfile())
    assert (me.id, me.username, me.primaryEmail) == ("user-alice", "alice", "alice@example.com")
    with pytest.raises(LogtoApiNotFoundError) as missing:
        client.blocking.account.withVerification("record-id").getMfaVerifications()
    assert missing.value.error == "guard.invalid_path" and missing.value.code == "api.guard.invalid_path"
    requests = account_requests(provider)
    assert [(r["method"], r["path"]) for r in requests] == [
        ("GET", "/api/my-account"),
        ("GET", "/api/my-account/mfa-verifications"),
    ]
    assert all(r["authorization"] == {"scheme": "bearer", "token": token_hash(token)} for r in requests)


def test_the_twins_share_the_session_and_hide_the_verification(make_client: ClientFactory) -> None:
    client = make_client()
    account = client.account
    verified = account.withVerification("a-secret-record-id")
    assert isinstance(account, AccountClient) and isinstance(client.blocking.account, BlockingAccountClient)
    assert isinstance(verified.blocking, BlockingAccountClient)
    assert verified._headers() == [(VERIFICATION_HEADER, "a-secret-record-id")] and account._headers() == []
    assert verified.blocking._headers() == verified._headers()
    assert "a-secret-record-id" not in repr(verified) and "verified" in repr(verified)


def test_the_retry_policy_is_checked_and_kept_by_every_derived_client(make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(LogtoConfigError):
        AccountClient(client, retry=RetryPolicy(maxRetries=-1))
    policy = RetryPolicy(maxRetries=5, baseDelay=0.5, maxDelay=2)
    account = AccountClient(client, retry=policy)
    assert account.retryPolicy == policy
    assert account.withVerification("record-id").blocking.retryPolicy == policy
    assert client.account.retryPolicy == RetryPolicy()


def test_without_a_session_nothing_is_sent(provider: Provider, make_client: ClientFactory) -> None:
    client = make_client()
    with pytest.raises(LogtoNotAuthenticatedError):
        run(client.account.getProfile())
    with pytest.raises(LogtoNotAuthenticatedError):
        client.blocking.account.getProfile()
    assert account_requests(provider) == []


def test_a_flask_views_client_calls_as_the_requests_user(provider: Provider) -> None:
    app = Flask(__name__)
    app.secret_key = "test-secret-key"
    app.config["SERVER_NAME"] = HOST
    config = LogtoConfig(endpoint=provider.endpoint, appId="web-app", appSecret="web-app-secret")
    logto = LogtoFlask(app, config, storage=FlaskSessionStorage())

    @app.route("/me")
    def me() -> dict[str, Any]:
        profile = logto.client.blocking.account.getProfile()
        return {
            "username": profile.username,
            "token": token_hash(logto.client.blocking.getAccessToken() or ""),
        }

    browser = app.test_client()
    location = browser.get("/sign-in").headers["Location"]
    browser.get(complete_sign_in(location, f"http://{HOST}/callback").replace(f"http://{HOST}", ""))
    answer = browser.get("/me").get_json()
    assert answer["username"] == "alice"
    [request] = account_requests(provider)
    assert request["authorization"] == {"scheme": "bearer", "token": answer["token"]}
