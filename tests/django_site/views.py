"""Views of the test site: Django auth, the lightweight decorator, the deployment probes, DRF."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logto_rs import LogtoInvalidGrantError, LogtoNotAuthenticatedError
from logto_rs.django import get_async_client, get_client, get_context
from logto_rs.django.conf import get_verifier
from logto_rs.django.decorators import logto_required
from logto_rs.django.drf import HasOrganization, HasScopes, LogtoOrganizationTokenAuthentication


def home(request: HttpRequest) -> JsonResponse:
    user = request.user
    claims = request.logto_claims  # type: ignore[attr-defined]
    return JsonResponse(
        {
            "user": user.get_username() if user.is_authenticated else None,
            "sub": claims.sub if claims else None,
        }
    )


@login_required
def private(request: HttpRequest) -> JsonResponse:
    user: Any = request.user
    return JsonResponse(
        {
            "username": user.username,
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "is_staff": user.is_staff,
            "is_superuser": user.is_superuser,
            "groups": sorted(user.groups.values_list("name", flat=True)),
            "access_token": get_client(request).getAccessToken(settings.API),
        }
    )


@logto_required
def claims(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sub": request.logto_claims.sub})  # type: ignore[attr-defined]


@logto_required(should_redirect=False, fetch_user_info=True)
async def claims_async(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"sub": request.logto_claims.sub, "userinfo": request.logto_user.sub})  # type: ignore[attr-defined]


async def token_async(request: HttpRequest) -> JsonResponse:
    """The token view as an ``async def`` view, on the awaitable client."""
    client = get_async_client(request)
    if not await client.isAuthenticatedAsync():
        return JsonResponse({"error": "Not authenticated"}, status=401)
    access_token = await client.getAccessToken(settings.API) or ""
    verified = await get_verifier().verify(access_token)
    return JsonResponse({"token": access_token, "sub": verified.sub, "pid": os.getpid()})


@logto_required(should_redirect=False)
def token(request: HttpRequest) -> JsonResponse:
    access_token = get_client(request).getAccessToken(settings.API) or ""
    verified = get_verifier().blocking.verify(access_token)
    return JsonResponse({"token": access_token, "sub": verified.sub, "pid": os.getpid()})


@csrf_exempt
@require_POST
@logto_required(should_redirect=False)
def expire(request: HttpRequest) -> JsonResponse:
    """Drops the session's access tokens, as if they had expired."""
    get_client(request).clearAccessToken()
    return JsonResponse({"pid": os.getpid()})


def revoked(request: HttpRequest) -> JsonResponse:
    """A view whose refresh Logto refused."""
    raise LogtoInvalidGrantError("the grant was revoked", "oauth.invalid_grant", "invalid_grant", None, 400)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid()})


class Products(APIView):
    permission_classes = [HasScopes]
    required_scopes = ["read:products"]

    def get(self, request: Request) -> Response:
        return Response({"sub": request.auth.sub, "user": str(request.user), "scope": request.auth.scope})


class SignedInOnly(APIView):
    """A DRF view that needs the session's user: a Logto error it raises is not a 500."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        raise LogtoNotAuthenticatedError("no user is signed in", "not_authenticated")


class DeleteProducts(Products):
    required_scopes = ["delete:products"]


class OrganizationMembers(APIView):
    authentication_classes = [LogtoOrganizationTokenAuthentication]
    permission_classes = [HasScopes]
    required_scopes = ["read:members"]

    def get(self, request: Request, organization_id: str) -> Response:
        return Response({"sub": request.auth.sub, "organization": organization_id})


class OrganizationProducts(APIView):
    permission_classes = [HasOrganization]
    required_scopes = ["read:products"]

    def get(self, request: Request, organization_id: str) -> Response:
        return Response({"sub": request.auth.sub, "organization": organization_id})


def context(request: HttpRequest) -> JsonResponse:
    """The request's context: ``request.logto`` (lazy) and ``get_context`` with every token."""
    plain = request.logto  # type: ignore[attr-defined]
    full = get_context(request, fetch_user_info=True, access_tokens=True, organization_tokens=True)
    return JsonResponse(
        {
            "is_authenticated": plain.is_authenticated,
            "sub": plain.claims.sub if plain.claims else None,
            "user_info": full.user_info.sub if full.user_info else None,
            "access_tokens": sorted(full.access_tokens),
            "organization_tokens": sorted(full.organization_tokens),
        }
    )
