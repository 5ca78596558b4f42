"""The webhook endpoint in FastAPI (or Starlette): ``app.include_router(webhook_router(webhooks))``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..backchannel import read_limited_async
from ..fastapi import _response
from . import SIGNATURE_HEADER, Webhooks

__all__ = ["webhook_router"]

DEFAULT_PATH = "/webhooks/logto"
"""Where :func:`webhook_router` serves the endpoint unless told otherwise."""


def webhook_router(webhooks: Webhooks, path: str = DEFAULT_PATH) -> APIRouter:
    """An ``APIRouter`` with ``POST path`` serving ``webhooks`` (see :meth:`Webhooks.respond_async`).

    At most 64 KiB of the body are read; the store and coroutine handlers are awaited on the
    event loop, plain handlers run in a worker thread.
    """
    router = APIRouter()

    @router.post(path, include_in_schema=False)
    async def logto_webhook(request: Request) -> Response:
        body = await read_limited_async(request.stream(), request.headers.get("content-length"))
        return _response(await webhooks.respond_async(body, request.headers.get(SIGNATURE_HEADER)))

    return router
