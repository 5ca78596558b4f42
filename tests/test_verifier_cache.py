"""The verified-token cache and impersonated tokens, against a key set served locally.

The model-based test drives a cached and an uncached verifier through the same random
sequence of verifications, key rotations, key withdrawals and clock moves, and requires the
same answer from both every time.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logto_rs import (
    ActorClaims,
    BlockingAccessTokenVerifier,
    LogtoAccessTokenError,
    LogtoConfigError,
    LogtoInvalidTokenError,
)

sys.path.insert(0, str(Path(__file__).resolve().parent / "scripts"))
from local_tenant import API, LocalTenant  # noqa: E402

SCOPES = ["read:products", "write:products", "delete:products"]


@pytest.fixture(scope="module")
def tenant() -> Iterator[LocalTenant]:
    served = LocalTenant()
    yield served
    served.close()


def outcome(verifier: BlockingAccessTokenVerifier, token: str, **requirements: Any) -> Any:
    """What a verification gives, comparable between verifiers."""
    try:
        return ("ok", verifier.verify(token, **requirements).model_dump())
    except LogtoAccessTokenError as error:
        return (type(error).__name__, error.check, error.status, error.www_authenticate)


MINT = st.tuples(
    st.just("mint"),
    st.fixed_dictionaries(
        {
            "lifetime": st.integers(-120, 7200),
            "issued": st.integers(-30, 90),
            "not_before": st.one_of(st.none(), st.integers(-60, 600)),
            "scopes": st.sets(st.sampled_from(SCOPES)),
            "organization": st.sampled_from([None, "org-acme", "org-globex"]),
            "actor": st.sampled_from([None, {"sub": "admin-1"}, {"sub": "admin-1", "act": {"sub": "root"}}]),
            "key": st.integers(0, 2),
            "tampered": st.booleans(),
        }
    ),
)
VERIFY = st.tuples(
    st.just("verify"),
    st.fixed_dictionaries(
        {
            "token": st.integers(0, 3),
            "scopes": st.sets(st.sampled_from(SCOPES), max_size=2),
            "organization": st.sampled_from([None, "org-acme"]),
            "times": st.integers(1, 3),
        }
    ),
)
OPERATIONS = st.lists(
    st.one_of(
        MINT,
        VERIFY,
        VERIFY,
        VERIFY,
        st.tuples(st.just("rotate"), st.just({})),
        st.tuples(st.just("withdraw"), st.fixed_dictionaries({"key": st.integers(0, 2)})),
        st.tuples(st.just("republish"), st.fixed_dictionaries({"key": st.integers(0, 2)})),
        st.tuples(st.just("advance_clock"), st.fixed_dictionaries({"seconds": st.integers(-120, 4000)})),
    ),
    min_size=5,
    max_size=40,
)


class Model:
    """A cached and an uncached verifier, a local tenant and the tokens minted so far."""

    def __init__(self, tenant: LocalTenant, allow_impersonation: bool) -> None:
        self.tenant = tenant
        self.tokens = [tenant.sign()]
        # Both verifiers fetch the JWKS at every verification (max-age 0, no cooldown), so they
        # always decide with the same keys whatever the timing.
        tenant.cache_control = "max-age=0"
        options: dict[str, Any] = {"jwksRefetchCooldown": 0, "allowImpersonation": allow_impersonation}
        self.cached = BlockingAccessTokenVerifier(tenant.endpoint, API, **options)
        self.uncached = BlockingAccessTokenVerifier(tenant.endpoint, API, cacheSize=0, **options)

    def kid(self, index: int) -> str:
        kids = list(self.tenant.keys)
        return kids[-1 - index % len(kids)]

    def mint(
        self,
        lifetime: int,
        issued: int,
        not_before: Optional[int],
        scopes: set[str],
        organization: Optional[str],
        actor: Optional[dict[str, Any]],
        key: int,
        tampered: bool,
    ) -> None:
        now = int(time.time())
        token = self.tenant.sign_with(
            self.kid(key),
            iat=now + issued,
            exp=now + lifetime,
            nbf=None if not_before is None else now + not_before,
            scope=" ".join(sorted(scopes)),
            organization_id=organization,
            act=actor,
        )
        if tampered:
            head, body, signature = token.split(".")
            token = f"{head}.{body}.{signature[:-4]}{'BBBB' if signature.endswith('AAAA') else 'AAAA'}"
        self.tokens.append(token)

    def verify(self, token: int, scopes: set[str], organization: Optional[str], times: int) -> None:
        chosen = self.tokens[-1 - token % len(self.tokens)]  # mostly the recent ones
        requirements: dict[str, Any] = {"scopes": sorted(scopes), "organizationId": organization}
        for _ in range(times):
            expected = outcome(self.uncached, chosen, **requirements)
            assert outcome(self.cached, chosen, **requirements) == expected

    def rotate(self) -> None:
        self.tenant.rotate()

    def withdraw(self, key: int) -> None:
        self.tenant.withdraw(self.kid(key))

    def republish(self, key: int) -> None:
        if self.kid(key) not in self.tenant.published:
            self.tenant.published.append(self.kid(key))

    def advance_clock(self, seconds: int) -> None:
        self.cached._core._shift_clock(seconds)
        self.uncached._core._shift_clock(seconds)


@settings(
    max_examples=int(os.environ.get("CACHE_MODEL_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(allow_impersonation=st.booleans(), operations=OPERATIONS)
def test_the_cached_verifier_answers_exactly_like_an_uncached_one(
    allow_impersonation: bool, operations: list[tuple[str, dict[str, Any]]]
) -> None:
    tenant = LocalTenant()
    try:
        model = Model(tenant, allow_impersonation)
        for name, arguments in operations:
            getattr(model, name)(**arguments)
    finally:
        tenant.close()


def test_a_repeated_token_is_not_checked_again_until_the_keys_change(tenant: LocalTenant) -> None:
    verifier = BlockingAccessTokenVerifier(tenant.endpoint, API)
    token = tenant.sign()
    assert verifier.verify(token).sub == "user-alice"
    # The same token is answered from the cache: a withdrawn key goes unnoticed while the keys
    # are fresh (as without a cache: the JWKS is not fetched again before its max-age)...
    kid = tenant.jwk["kid"]
    tenant.withdraw(kid)
    assert verifier.verify(token, scopes=["read:products"]).scopes == ["read:products", "write:products"]
    # ...and once a token with an unknown key makes the verifier fetch the new key set, the
    # cached token is refused at once.
    tenant.rotate()
    assert verifier.verify(tenant.sign()).sub == "user-alice"
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(token)
    assert caught.value.check == "kid"
    tenant.published = list(tenant.keys)


def test_every_hit_checks_expiry_and_the_calls_requirements(tenant: LocalTenant) -> None:
    verifier = BlockingAccessTokenVerifier(tenant.endpoint, API, clockTolerance=10)
    token = tenant.sign(exp=int(time.time()) + 100)
    assert verifier.verify(token).sub == "user-alice"
    with pytest.raises(LogtoAccessTokenError) as caught:
        verifier.verify(token, scopes=["delete:products"])
    assert (caught.value.status, caught.value.check) == (403, "scope")
    with pytest.raises(LogtoAccessTokenError) as caught:
        verifier.verify(token, organizationId="org-acme")
    assert (caught.value.status, caught.value.check) == (403, "organization_id")
    verifier._core._shift_clock(105)  # within the 10 s tolerance
    assert verifier.verify(token).sub == "user-alice"
    verifier._core._shift_clock(10)
    with pytest.raises(LogtoInvalidTokenError) as caught:
        verifier.verify(token)
    assert caught.value.check == "exp"


def test_the_cache_bounds_are_validated(tenant: LocalTenant) -> None:
    with pytest.raises(LogtoConfigError):
        BlockingAccessTokenVerifier(tenant.endpoint, API, cacheTtl=-1)
    assert BlockingAccessTokenVerifier(tenant.endpoint, API, cacheSize=0).verify(tenant.sign()).sub


def test_a_forked_worker_verifies_with_a_cache_of_its_own(tenant: LocalTenant) -> None:
    verifier = BlockingAccessTokenVerifier(tenant.endpoint, API)
    token = tenant.sign()
    verifier.verify(token)
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            status = (
                0 if verifier.verify(token).sub == "user-alice" and verifier.verify(tenant.sign()).sub else 2
            )
        finally:
            os._exit(status)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert verifier.verify(token).sub == "user-alice"


def test_impersonated_tokens_expose_their_actor_and_can_be_refused(tenant: LocalTenant) -> None:
    token = tenant.sign(act={"sub": "admin-1", "act": {"sub": "root", "role": "owner"}})
    claims = BlockingAccessTokenVerifier(tenant.endpoint, API).verify(token)
    assert isinstance(claims.act, ActorClaims)
    assert (claims.sub, claims.act.sub) == ("user-alice", "admin-1")
    assert claims.act.act is not None and claims.act.act.sub == "root"
    assert claims.act.act.model_extra == {"role": "owner"}
    assert BlockingAccessTokenVerifier(tenant.endpoint, API).verify(tenant.sign()).act is None
    strict = BlockingAccessTokenVerifier(tenant.endpoint, API, allowImpersonation=False)
    assert strict.allowImpersonation is False
    assert strict.verify(tenant.sign()).sub == "user-alice"
    with pytest.raises(LogtoInvalidTokenError) as caught:
        strict.verify(token)
    assert (caught.value.status, caught.value.check) == (401, "act")
    assert 'error="invalid_token"' in caught.value.www_authenticate
    # An `act` that does not name its actor does not fit the model: the token is refused.
    for malformed in ({"role": "owner"}, "admin-1", {"sub": "admin-1", "act": {"sub": 7}}):
        with pytest.raises(LogtoInvalidTokenError) as caught:
            BlockingAccessTokenVerifier(tenant.endpoint, API).verify(tenant.sign(act=malformed))
        assert caught.value.check == "claims"
    assert json.loads(claims.model_dump_json())["act"]["sub"] == "admin-1"
