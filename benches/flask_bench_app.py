"""The app the Flask load benchmark serves with gunicorn: one guarded view per contender.

- ``/logto``: ``logto_rs.flask.require_access_token`` with a shared ``AccessTokenVerifier``.
- ``/pyjwt``: the same view behind a decorator making the same checks with PyJWT
  (``bench_support.pyjwt_checker``).
- ``/noop``: the same view behind a decorator that checks nothing (reads the bearer token only).
- ``/open``: the same view without a guard, the floor of the server and the framework.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

from flask import Flask, g, jsonify, request

from bench_support import API, SCOPE, Rejection, pyjwt_checker
from logto_rs import AccessTokenVerifier
from logto_rs.flask import require_access_token
from logto_rs.guard import bearer_token


def pyjwt_required(view: Callable[..., Any]) -> Callable[..., Any]:
    check = pyjwt_checker()

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        outcome = check(bearer_token(request.headers.get("authorization")))
        if isinstance(outcome, Rejection):
            response = jsonify(outcome.body)
            response.status_code = outcome.status
            response.headers.update(outcome.headers)
            return response
        g.pyjwt_claims = outcome
        return view(*args, **kwargs)

    return guarded


def noop_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A decorator of the same shape that checks nothing (reads the bearer token only)."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if bearer_token(request.headers.get("authorization")) is None:
            return jsonify(error="invalid_token"), 401
        return view(*args, **kwargs)

    return guarded


def app() -> Flask:
    application = Flask("flask_bench")
    verifier = AccessTokenVerifier(os.environ["BENCH_TENANT"], API)

    @application.get("/logto")
    @require_access_token(scopes=[SCOPE], verifier=verifier)
    def with_logto() -> Any:
        return jsonify(sub=g.access_token_claims.sub)

    @application.get("/pyjwt")
    @pyjwt_required
    def with_pyjwt() -> Any:
        return jsonify(sub=g.pyjwt_claims["sub"])

    @application.get("/noop")
    @noop_required
    def with_noop() -> Any:
        return jsonify(sub="user-alice")

    @application.get("/open")
    def open_view() -> Any:
        return jsonify(sub="user-alice")

    @application.get("/pid")
    def pid() -> Any:
        return jsonify(pid=os.getpid())

    return application
