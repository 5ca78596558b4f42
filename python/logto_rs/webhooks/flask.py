"""The webhook endpoint in Flask.

``app.add_url_rule("/webhooks/logto", view_func=webhook_view(webhooks), methods=["POST"])``.
"""

from __future__ import annotations

from typing import Callable

from flask import request
from werkzeug.wrappers import Response

from ..backchannel import read_limited
from ..flask import _response
from . import SIGNATURE_HEADER, Webhooks

__all__ = ["webhook_view"]


def webhook_view(webhooks: Webhooks) -> Callable[[], Response]:
    """A Flask view serving ``webhooks`` (register it for ``POST``; see :meth:`Webhooks.respond`).

    At most 64 KiB of the body are read; no CSRF token is needed (Logto signs the body).
    """

    def logto_webhook() -> Response:
        body = read_limited(request.stream.read, request.headers.get("Content-Length"))
        return _response(webhooks.respond(body, request.headers.get(SIGNATURE_HEADER)))

    return logto_webhook
