"""The app the FastAPI load benchmark serves with uvicorn: one guarded endpoint per contender.

- ``/logto``: ``logto_rs.fastapi.require_access_token`` on a shared ``AccessTokenVerifier``.
- ``/pyjwt``: the same endpoint behind a PyJWT dependency making the same checks: the one
  algorithm, the signature, ``typ: at+jwt``, ``iss``, ``aud``, ``sub``, ``exp``/``iat``/``nbf``
  with 60 s leeway, the ``read:products`` scope, and RFC 6750 answers. Its key is parsed once per
  process (PyJWT's fastest configuration; ``PyJWKClient`` would add a lookup per request).
- ``/noop``: the same endpoint behind a dependency of the same shape that checks nothing (reads
  the bearer token only): what FastAPI's dependency resolution costs by itself.
- ``/open``: the same endpoint without a guard, the floor of the server and the framework.
"""

import os
from collections.abc import Awaitable
from typing import Annotated, Any, Callable, Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bench_support import API, SCOPE, Rejection, pyjwt_checker
from logto_rs import AccessTokenClaims, AccessTokenVerifier
from logto_rs.fastapi import require_access_token
from logto_rs.guard import bearer_token


def pyjwt_dependency() -> Callable[..., Awaitable[dict[str, Any]]]:
    """The PyJWT dependency for the tenant in ``BENCH_TENANT`` / ``BENCH_JWK``."""
    check = pyjwt_checker()
    bearer = HTTPBearer(auto_error=False)

    async def pyjwt_claims(
        request: Request,
        _credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)] = None,
    ) -> dict[str, Any]:
        outcome = check(bearer_token(request.headers.get("authorization")))
        if isinstance(outcome, Rejection):
            raise HTTPException(outcome.status, outcome.body, headers=outcome.headers)
        return outcome

    return pyjwt_claims


def noop_dependency() -> Callable[..., Awaitable[dict[str, Any]]]:
    """A guard of the same shape that checks nothing: the cost of FastAPI's dependencies."""
    bearer = HTTPBearer(auto_error=False)

    async def noop_claims(
        request: Request,
        _credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)] = None,
    ) -> dict[str, Any]:
        if bearer_token(request.headers.get("authorization")) is None:
            raise HTTPException(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": "Bearer"})
        return {"sub": "user-alice"}

    return noop_claims


def app() -> FastAPI:
    verifier = AccessTokenVerifier(os.environ["BENCH_TENANT"], API)
    pyjwt_claims = pyjwt_dependency()
    application = FastAPI()

    @application.get("/logto")
    async def with_logto(
        claims: Annotated[AccessTokenClaims, Depends(require_access_token(verifier, [SCOPE]))],
    ) -> dict[str, str]:
        return {"sub": claims.sub}

    @application.get("/pyjwt")
    async def with_pyjwt(claims: Annotated[dict[str, Any], Depends(pyjwt_claims)]) -> dict[str, str]:
        return {"sub": claims["sub"]}

    noop = noop_dependency()

    @application.get("/noop")
    async def with_noop(claims: Annotated[dict[str, Any], Depends(noop)]) -> dict[str, str]:
        return {"sub": claims["sub"]}

    @application.get("/open")
    async def open_endpoint() -> dict[str, str]:
        return {"sub": "user-alice"}

    @application.get("/pid")
    async def pid() -> dict[str, int]:
        return {"pid": os.getpid()}

    return application
