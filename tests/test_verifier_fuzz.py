"""Property tests: whatever string reaches the verifier, it never panics and never accepts it."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import WEB_APP, run, sign_in
from logto_rs import (
    AccessTokenVerifier,
    BlockingAccessTokenVerifier,
    LogtoAccessTokenError,
    LogtoClient,
    LogtoConfig,
    MemoryStorage,
)
from provider_harness import Provider, decode_jwt

API = "https://api.example.com"

fuzz = settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class Real:
    """A real token, and a verifier with the provider's keys cached and no refetch allowed."""

    def __init__(self, provider: Provider) -> None:
        config = LogtoConfig(
            endpoint=provider.endpoint,
            appId=WEB_APP[0],
            appSecret=WEB_APP[1],
            scopes=["read:products"],
            resources=[API],
        )
        client = LogtoClient(config, storage=MemoryStorage())
        run(sign_in(client))
        self.token = run(client.getAccessToken(API)) or ""
        self.header, self.claims = decode_jwt(self.token)
        self.verifier = AccessTokenVerifier(provider.endpoint, API, jwksRefetchCooldown=3600).blocking
        assert self.verifier.verify(self.token).sub == "user-alice"


@pytest.fixture(scope="module")
def real(provider: Provider) -> Real:
    return Real(provider)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def never_accepted(verifier: BlockingAccessTokenVerifier, token: str) -> None:
    """The verifier rejects `token` with a typed error (a Rust panic would be a BaseException)."""
    with pytest.raises(LogtoAccessTokenError) as caught:
        verifier.verify(token)
    assert caught.value.status in (401, 403)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
segments = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ", max_size=64
)


@fuzz
@given(text=st.text(max_size=300) | st.builds(".".join, st.lists(segments, max_size=5)))
def test_random_strings(real: Real, text: str) -> None:
    never_accepted(real.verifier, text)


@fuzz
@given(
    header=st.fixed_dictionaries(
        {"alg": st.sampled_from(["ES384", "ES256", "RS256", "PS256", "none", "HS256", "EdDSA", ""])},
        optional={
            "kid": st.text(max_size=20),
            "typ": st.sampled_from(["at+jwt", "JWT", ""]),
            "x": json_values,
        },
    ),
    claims=st.dictionaries(st.sampled_from(["iss", "aud", "sub", "exp", "iat", "nbf", "scope"]), json_values),
    signature=st.binary(max_size=300),
    use_real_kid=st.booleans(),
)
def test_well_formed_forgeries(
    real: Real, header: dict[str, Any], claims: dict[str, Any], signature: bytes, use_real_kid: bool
) -> None:
    if use_real_kid:
        header = {**header, "kid": real.header["kid"]}
    forged = {**real.claims, **claims}
    token = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(forged).encode())}.{b64(signature)}"
    never_accepted(real.verifier, token)


@fuzz
@given(data=st.data())
def test_mutations_of_a_real_token(real: Real, data: st.DataObject) -> None:
    token = real.token
    position = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="ascii").filter(lambda c: c != token[position]))
    mutated = token[:position] + replacement + token[position + 1 :]
    cut = data.draw(st.integers(0, len(token) - 1))
    for candidate in (mutated, token[:cut], token + data.draw(st.text(min_size=1, max_size=5))):
        never_accepted(real.verifier, candidate)


@fuzz
@given(tokens=st.lists(st.text(max_size=100), max_size=40))
def test_batches_of_random_strings(real: Real, tokens: list[str]) -> None:
    results = real.verifier.verifyMany(tokens)
    assert len(results) == len(tokens)
    assert all(isinstance(result, LogtoAccessTokenError) for result in results)
