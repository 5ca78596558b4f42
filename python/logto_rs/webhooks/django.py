"""The webhook endpoint in Django: ``path("webhooks/logto", webhook_view(webhooks))``."""

from __future__ import annotations

from typing import Callable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..backchannel import read_limited
from ..django._http import response
from . import SIGNATURE_HEADER, Webhooks

__all__ = ["webhook_view"]


def webhook_view(webhooks: Webhooks) -> Callable[[HttpRequest], HttpResponse]:
    """A Django view serving ``webhooks`` (``POST`` only, CSRF-exempt: Logto signs the body).

    See :meth:`Webhooks.respond`; at most 64 KiB of the body are read.
    """

    @csrf_exempt
    @require_POST
    def logto_webhook(request: HttpRequest) -> HttpResponse:
        body = read_limited(request.read, request.META.get("CONTENT_LENGTH") or None)
        return response(webhooks.respond(body, request.headers.get(SIGNATURE_HEADER)))

    return logto_webhook
