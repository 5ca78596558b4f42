"""The demo's URLs: Logto's views under auth/, the pages, the admin and the DRF endpoint."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("auth/", include("logto_rs.django.urls")),
    path("protected/userinfo/", views.userinfo, name="userinfo"),
    path("protected/organizations/", views.organizations, name="organizations"),
    path("protected/api/", views.api_page, name="api-page"),
    path("api/products/", views.Products.as_view(), name="products"),
    path("admin/", admin.site.urls),
]
