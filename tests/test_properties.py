"""Property tests (Hypothesis) over claim shapes, callback URLs and redirect targets.

Case counts: ``LOGTO_PROPERTY_CASES`` (the long run in the README's security notes) divided
over the properties here; by default a few thousand each, so the suite stays quick on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from conftest import REDIRECT_URI, WEB_APP, run, snapshot
from logto_rs import (
    AccessTokenClaims,
    IdTokenClaims,
    LogtoCallbackError,
    LogtoClient,
    LogtoConfig,
    LogtoInvalidTokenError,
    MemoryStorage,
)
from logto_rs._core import _check_claims
from logto_rs.flask import safe_next
from logto_rs.verifier import _claims
from provider_harness import Provider

ISSUER = "https://tenant.logto.app/oidc"
AUDIENCE = "https://api.example.com"
NOW = 1_800_000_000
# The default per-property count; LOGTO_PROPERTY_CASES raises it for the long run.
CASES = int(os.environ.get("LOGTO_PROPERTY_CASES", "0")) or 5000

properties = settings(
    max_examples=CASES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
) | st.integers(min_value=1, max_value=300).map(nested)
numeric_dates = (
    st.integers(min_value=-10, max_value=2**66)
    | st.floats(min_value=-10.0, max_value=1e300)
    | st.sampled_from([NOW - 30, NOW + 3600, NOW + 0.5, float(NOW), 2**64, 2**64 - 1, -0.0])
)
string_lists = st.lists(st.text(max_size=8), max_size=3)

# Per claim: mostly the value a real token has, sometimes anything at all.
plausible: dict[str, st.SearchStrategy[Any]] = {
    "iss": st.just(ISSUER),
    "aud": st.just(AUDIENCE) | st.just([AUDIENCE]) | st.just([AUDIENCE, "other"]),
    "sub": st.text(min_size=1, max_size=8),
    "exp": numeric_dates,
    "iat": numeric_dates,
    "nbf": numeric_dates,
    "azp": st.just(AUDIENCE),
    "scope": st.text(max_size=12),
    "jti": st.text(max_size=8),
    "client_id": st.text(max_size=8),
    "organization_id": st.text(max_size=8),
    "name": st.text(max_size=8),
    "username": st.text(max_size=8),
    "picture": st.text(max_size=8),
    "email": st.text(max_size=8),
    "email_verified": st.booleans(),
    "phone_number": st.text(max_size=8),
    "phone_number_verified": st.booleans(),
    "created_at": numeric_dates,
    "updated_at": numeric_dates,
    "custom_data": json_values,
    "identities": st.dictionaries(st.text(max_size=5), json_values, max_size=2),
    "roles": string_lists,
    "organizations": string_lists,
    "organization_roles": string_lists,
    "at_hash": st.text(max_size=8),
    "nonce": st.text(max_size=8),
    "sid": st.text(max_size=8),
    "auth_time": numeric_dates,
}


@st.composite
def payloads(draw: st.DrawFn) -> dict[str, Any]:
    claims: dict[str, Any] = {}
    for name, strategy in plausible.items():
        mode = draw(st.sampled_from(["plausible"] * 6 + ["absent", "null", "anything"]))
        if mode == "plausible":
            claims[name] = draw(strategy)
        elif mode == "null":
            claims[name] = None
        elif mode == "anything":
            claims[name] = draw(json_values)
    claims.update(draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)))
    return claims


def dump(claims: dict[str, Any]) -> str:
    return json.dumps(claims)


def model_matches(model: Any, claims: dict[str, Any]) -> None:
    assert model.sub == claims["sub"] and model.iss == ISSUER
    for name in ("exp", "iat"):
        assert getattr(model, name) == math.trunc(claims[name])


@settings(properties, max_examples=max(100, CASES // 2))
@given(claims=payloads())
def test_every_token_the_checks_accept_fits_its_model(claims: dict[str, Any]) -> None:
    payload = dump(claims)
    # An access token at the verifier: its model, or a typed 401, never a bare pydantic error.
    check = _check_claims(payload, False, ISSUER, AUDIENCE, NOW)
    try:
        model = _claims(payload)
    except LogtoInvalidTokenError as error:
        assert check is not None and error.check == "claims"
    else:
        if check is None:
            model_matches(model, claims)
            assert isinstance(model, AccessTokenClaims)
    # An ID token: every payload the checks accept fits IdTokenClaims.
    if _check_claims(payload, True, ISSUER, AUDIENCE, NOW) is None:
        try:
            model = IdTokenClaims.model_validate_json(payload)
        except ValidationError as error:  # pragma: no cover - reported with the payload
            pytest.fail(f"the checks accepted a payload its model refuses: {payload}\n{error}")
        model_matches(model, claims)


def test_the_shapes_the_checks_refuse() -> None:
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": "s", "exp": NOW + 60, "iat": NOW}
    assert _check_claims(dump(base), False, ISSUER, AUDIENCE, NOW) is None
    assert _claims(dump({**base, "exp": NOW + 60.7})).exp == NOW + 60  # fractional NumericDate
    for claims, check in [
        ({k: v for k, v in base.items() if k != "iat"}, "claims"),  # iat is required
        ({**base, "aud": [AUDIENCE, 7]}, "claims"),  # aud holds a number
        ({**base, "scope": ["read"]}, "claims"),
        ({**base, "extra": nested(200)}, "malformed"),  # deeper than the parser allows
    ]:
        assert _check_claims(dump(claims), False, ISSUER, AUDIENCE, NOW) == check, claims
    assert _check_claims(dump({**base, "roles": [1]}), True, ISSUER, AUDIENCE, NOW) == "claims"
    # Found by the long run: a negative fractional NumericDate in an optional claim.
    odd_dates = {**base, "auth_time": -0.5, "created_at": -7.25}
    assert _check_claims(dump(odd_dates), True, ISSUER, AUDIENCE, NOW) is None
    assert IdTokenClaims.model_validate_json(dump(odd_dates)).auth_time == 0
    assert _check_claims(dump({**base, "roles": [1]}), False, ISSUER, AUDIENCE, NOW) is None  # custom claim


# --- callback URLs -----------------------------------------------------------------------------

query_values = st.text(max_size=16) | st.sampled_from(["", "access_denied", "\r\n", "%00", "a" * 300])
query = st.lists(
    st.tuples(st.sampled_from(["code", "state", "iss", "error", "error_description", "x"]), query_values),
    max_size=6,
)


@pytest.fixture(scope="module")
def pending(provider: Provider) -> tuple[LogtoClient, MemoryStorage]:
    """A client with a sign-in started (its session stored) and discovery done."""
    storage = MemoryStorage()
    config = LogtoConfig(endpoint=provider.endpoint, appId=WEB_APP[0], appSecret=WEB_APP[1])
    client = LogtoClient(config, storage=storage)
    run(client.signIn(REDIRECT_URI))
    return client, storage


@properties
@given(params=query, base=st.sampled_from([REDIRECT_URI, REDIRECT_URI + "/", "http://127.0.0.1/other"]))
def test_a_callback_without_the_sessions_state_never_reaches_the_provider(
    provider: Provider, pending: tuple[LogtoClient, MemoryStorage], params: list[tuple[str, str]], base: str
) -> None:
    client, storage = pending
    before = snapshot(storage)
    url = f"{base}?{urlencode(params)}"
    with pytest.raises(LogtoCallbackError) as caught:
        client.blocking.handleSignInCallback(url)
    error = caught.value
    assert error.code in {
        "callback.missing_state",
        "callback.state_mismatch",
        "callback.invalid_url",
        "callback.redirect_uri_mismatch",
    }
    for text in (str(error), repr(error)):
        assert "\n" not in text and "\r" not in text
    assert snapshot(storage) == before
    assert not provider.requests(path="/oidc/token")  # nothing was redeemed


# --- the redirect target after sign-in ---------------------------------------------------------

targets = st.text(max_size=40) | st.builds(
    lambda a, b: a + b,
    st.sampled_from(["/", "//", "/\\", "\\/", "http:", "/%2f", "/\t/"]),
    st.text(max_size=20),
)


@properties
@given(target=targets)
def test_the_redirect_target_stays_on_this_origin(target: str) -> None:
    chosen = safe_next(target)
    assert chosen in (target, "/")
    parts = urlsplit("https://app.example" + chosen)
    assert parts.netloc == "app.example"  # the browser stays on this origin
    assert chosen.startswith("/") and not chosen.startswith("//") and "\\" not in chosen
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in chosen)
