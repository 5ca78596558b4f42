"""The demo's pages: who is signed in, the userinfo, organization tokens, a call to the API."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from logto_rs import LogtoOAuthError
from logto_rs.django import get_client


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "demo/home.html")


@login_required
def userinfo(request: HttpRequest) -> HttpResponse:
    info = get_client(request).fetchUserInfo().model_dump_json(indent=2, exclude_unset=True)
    return render(request, "demo/userinfo.html", {"userinfo": info})


@login_required
def organizations(request: HttpRequest) -> HttpResponse:
    client = get_client(request)
    rows: list[dict[str, Any]] = []
    for organization_id in client.getIdTokenClaims().organizations or []:
        try:
            claims = client.getOrganizationTokenClaims(organization_id, verify=True)
            rows.append({"id": organization_id, "scopes": claims.scope or ""})
        except LogtoOAuthError as error:
            rows.append({"id": organization_id, "error": error.code})
    return render(request, "demo/organizations.html", {"rows": rows})


@login_required
def api_page(request: HttpRequest) -> HttpResponse:
    """A page whose script calls the API with the user's access token, as a single-page app would."""
    token = get_client(request).getAccessToken(settings.API)
    return render(request, "demo/api.html", {"access_token": token})


class Products(APIView):
    """The API: any token for ``https://api.example.com`` with ``read:products``."""

    required_scopes = ["read:products"]

    def get(self, request: Request) -> Response:
        return Response({"products": ["tea", "cake"], "sub": request.auth.sub, "scope": request.auth.scope})
