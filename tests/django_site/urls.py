from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home),
    path("auth/", include("logto_rs.django.urls")),
    path("admin/", admin.site.urls),
    path("private/", views.private),
    path("claims/", views.claims),
    path("claims-async/", views.claims_async),
    path("context/", views.context),
    path("token/", views.token),
    path("token-async/", views.token_async),
    path("expire/", views.expire),
    path("revoked/", views.revoked),
    path("health/", views.health),
    path("api/products/", views.Products.as_view()),
    path("api/signed-in-only/", views.SignedInOnly.as_view()),
    path("api/products/delete/", views.DeleteProducts.as_view()),
    path("api/orgs/<str:organization_id>/members/", views.OrganizationMembers.as_view()),
    path("api/orgs/<str:organization_id>/products/", views.OrganizationProducts.as_view()),
]
