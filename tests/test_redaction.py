"""No token, code or secret appears in any repr, str or exception message."""

from __future__ import annotations

import json
import pickle
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import BaseModel, ValidationError

from conftest import REDIRECT_URI, ClientFactory, run, sign_in
from logto_rs import (
    LogtoException,
    LogtoTokenValidationError,
    MachineToken,
    MemoryStorage,
    PersonalAccessToken,
    SubjectToken,
    TokenExchangeResult,
)
from logto_rs._rest import read_answer
from logto_rs.errors import LogtoResponseError
from logto_rs.management.models import UserPersonalAccessToken
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


SECRET = "pat_s3cr3t-Value-9f8e7d6c5b4a"
LATER = 2_000_000_000

# A model holding a secret, and fields that fail validation beside it (or around it).
SECRET_BEARING_PAYLOADS: list[tuple[type[BaseModel], str, dict[str, Any]]] = [
    (MachineToken, "missing field", {"accessToken": SECRET}),
    (MachineToken, "wrong type elsewhere", {"accessToken": SECRET, "expiresAt": "soon"}),
    (MachineToken, "wrong type of the secret", {"accessToken": [SECRET], "expiresAt": LATER}),
    (TokenExchangeResult, "missing field", {"accessToken": SECRET, "scope": "a b"}),
    (PersonalAccessToken, "missing field", {"userId": "u", "value": SECRET, "createdAt": LATER}),
    (
        PersonalAccessToken,
        "wrong type elsewhere",
        {"userId": "u", "name": "n", "value": SECRET, "createdAt": {"at": "noon"}},
    ),
    (PersonalAccessToken, "wrong type of the secret", {"userId": "u", "name": "n", "value": {"v": SECRET}}),
    (SubjectToken, "missing field", {"subjectToken": SECRET, "expiresAt": LATER}),
    (
        SubjectToken,
        "wrong type of the secret",
        {"subjectToken": (SECRET,), "expiresIn": 600, "expiresAt": LATER},
    ),
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


@pytest.mark.parametrize(
    ("model", "mistake", "fields"),
    SECRET_BEARING_PAYLOADS,
    ids=[f"{model.__name__}-{mistake}" for model, mistake, _ in SECRET_BEARING_PAYLOADS],
)
def test_no_token_model_error_contains_the_secret(model: Any, mistake: str, fields: dict[str, Any]) -> None:
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


def test_a_bad_token_list_from_the_management_api_does_not_show_the_tokens() -> None:
    payload = json.dumps([{"userId": "u", "value": SECRET, "createdAt": LATER}])
    with pytest.raises(LogtoResponseError) as caught:
        read_answer(
            (200, None, payload), list[UserPersonalAccessToken], False, "listUserPersonalAccessTokens"
        )
    error = caught.value
    for text in [str(error), repr(error), *map(str, error.args)]:
        assert SECRET not in text
    assert "0.name: Field required" in str(error)  # the field is still named
