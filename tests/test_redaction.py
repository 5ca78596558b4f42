"""No token, code or secret appears in any repr, str or exception message."""

from __future__ import annotations

import pickle
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import REDIRECT_URI, ClientFactory, run, sign_in
from logto_rs import LogtoException, LogtoTokenValidationError, MemoryStorage
from provider_harness import Provider, complete_sign_in


def test_nothing_secret_in_reprs_or_errors(provider: Provider, make_client: ClientFactory) -> None:
    storage = MemoryStorage()
    client = make_client(storage)
    run(sign_in(client))
    secrets = [client.getIdToken(), client.getRefreshToken(), "web-app-secret"]
    secrets += [value for value in storage._values.values()]

    # A failing callback: the messages name the check, never the value.
    url = run(client.signIn(REDIRECT_URI))
    callback = complete_sign_in(url, REDIRECT_URI)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    secrets.append(code)
    provider.mutate_next_id_token(sign="attacker")
    with pytest.raises(LogtoTokenValidationError) as caught:
        run(client.handleSignInCallback(callback))
    error = caught.value

    shown = [repr(client), str(client), repr(client.config), repr(storage), repr(error), str(error)]
    shown += [str(arg) for arg in error.args]
    for text in shown:
        for secret in secrets:
            assert secret and secret not in text


def test_exceptions_pickle_with_their_attributes() -> None:
    error = LogtoException("boom", "oauth.invalid_grant", "invalid_grant", "grant request is invalid", 400)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is LogtoException
    assert (clone.code, clone.error, clone.description, clone.status) == (
        "oauth.invalid_grant",
        "invalid_grant",
        "grant request is invalid",
        400,
    )
