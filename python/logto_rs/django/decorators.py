"""``@logto_required``: a view only signed-in Logto users reach, without ``django.contrib.auth``.

With the auth backend, use Django's own ``@login_required`` instead (set
``LOGIN_URL = "logto_rs:sign_in"``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Optional, TypeVar, cast

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse

from .._steps import drive_blocking
from ..errors import LogtoInvalidGrantError, LogtoNotAuthenticatedError
from ..web import renamed_keyword
from . import get_client
from ._http import flows, unauthenticated

__all__ = ["logto_required"]

View = TypeVar("View", bound=Callable[..., Any])


def _admit(
    request: HttpRequest, fetch_user_info: bool, should_redirect: Optional[bool]
) -> Optional[HttpResponse]:
    client = get_client(request)
    claims = drive_blocking(flows().user(client))
    if claims is None:
        return unauthenticated(request, should_redirect)
    request.logto_claims = claims
    if fetch_user_info:
        try:
            request.logto_user = client.fetchUserInfo()
        except (LogtoInvalidGrantError, LogtoNotAuthenticatedError):
            return unauthenticated(request, should_redirect)
    return None


def logto_required(
    view: Optional[View] = None,
    *,
    fetch_user_info: bool = False,
    should_redirect: Optional[bool] = None,
    redirect: Optional[bool] = None,
) -> Any:
    """Protect a view: only a signed-in Logto user reaches it.

    The ID token claims are on ``request.logto_claims`` (``IdTokenClaims``), and with
    ``fetch_user_info`` the userinfo on ``request.logto_user`` (``UserInfoResponse``).
    Anyone else is redirected to sign in (a browser navigating) or answered JSON 401;
    ``should_redirect=True``/``False`` decides for every request (``redirect`` is its deprecated
    name). Sync and ``async def`` views.
    """
    redirect = renamed_keyword("redirect", "should_redirect", redirect, should_redirect)

    def decorator(function: View) -> View:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refused = await sync_to_async(_admit)(request, fetch_user_info, redirect)
                if refused is not None:
                    return refused
                return await function(request, *args, **kwargs)

            return cast(View, async_view)

        @functools.wraps(function)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refused = _admit(request, fetch_user_info, redirect)
            if refused is not None:
                return refused
            return function(request, *args, **kwargs)

        return cast(View, sync_view)

    return decorator(view) if view is not None else decorator
