"""Django integration: settings, session storage, views, an authentication backend, middleware.

Add ``"logto_rs.django"`` to ``INSTALLED_APPS``, a ``LOGTO`` settings dict, and
``path("auth/", include("logto_rs.django.urls"))``. With ``django.contrib.auth`` and
``"logto_rs.django.backends.LogtoBackend"`` in ``AUTHENTICATION_BACKENDS``, a Logto sign-in
logs a Django user in (created on first sign-in, found by ``sub``), so ``request.user``,
``@login_required``, the admin and permissions work. Without ``django.contrib.auth``,
:class:`~logto_rs.django.middleware.LogtoMiddleware` and :func:`~logto_rs.django.decorators.logto_required`
put the claims on ``request.logto_claims``. Django REST framework views use
:mod:`logto_rs.django.drf`.

:func:`get_client` gives a view the client bound to its request's session: the same methods
as :class:`~logto_rs.BlockingLogtoClient` (``getAccessToken``, ``fetchUserInfo``…).
:func:`get_context` gives the request's :class:`~logto_rs.LogtoContext` (claims, userinfo,
tokens) in one call; :class:`~logto_rs.django.middleware.LogtoMiddleware` puts the plain one
(claims only) on ``request.logto``, computed on first use.

Install with ``pip install logto-rs[django]`` (``logto-rs[drf]`` adds Django REST framework).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ..client import BlockingLogtoClient, LogtoClient
    from ..models import LogtoContext

__all__ = ["get_async_client", "get_client", "get_context"]


def get_client(request: HttpRequest) -> BlockingLogtoClient:
    """The app's client bound to ``request``'s session, with blocking methods (sync views).

    One client serves the process (one connection pool, discovery and key cache); this view of
    it costs microseconds and is made once per request.
    """
    client = getattr(request, "_logto_client", None)
    if client is None:
        from .conf import get_client as app_client
        from .storage import session_storage

        client = app_client().blocking.withStorage(session_storage(request))
        request._logto_client = client
    return client


def get_async_client(request: HttpRequest) -> LogtoClient:
    """The app's client bound to ``request``'s session, with awaitable methods (async views).

    Its storage reaches the session through ``sync_to_async``, so database-backed sessions work
    in ``async def`` views too.
    """
    client = getattr(request, "_logto_async_client", None)
    if client is None:
        from .conf import get_client as app_client
        from .storage import AsyncDjangoSessionStorage, session_storage

        client = app_client().withStorage(AsyncDjangoSessionStorage(session_storage(request)))
        request._logto_async_client = client
    return client


def get_context(
    request: HttpRequest,
    *,
    fetch_user_info: bool = False,
    access_tokens: bool = False,
    organization_tokens: bool = False,
) -> LogtoContext:
    """The request's :class:`~logto_rs.LogtoContext`, in one call and one read of the session.

    ``is_authenticated`` and the ID token ``claims``; with ``fetch_user_info`` the userinfo,
    with ``access_tokens`` a token per configured resource, with ``organization_tokens`` a token
    per organization of the user. An anonymous request gets ``is_authenticated=False``.
    """
    return get_client(request).getContext(
        fetch_user_info=fetch_user_info, access_tokens=access_tokens, organization_tokens=organization_tokens
    )
