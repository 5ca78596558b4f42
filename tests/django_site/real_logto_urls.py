"""The test site's URLs with the callback also at ``/callback``: the redirect URI registered for
the real Logto's ``web`` app (``http://127.0.0.1:5000/callback``)."""

from __future__ import annotations

from django.urls import path

from logto_rs.django import views

from .urls import urlpatterns as site_urlpatterns

urlpatterns = [path("callback", views.callback), *site_urlpatterns]
