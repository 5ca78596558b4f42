"""``path("auth/", include("logto_rs.django.urls"))``: sign-in, sign-up, callback and sign-out.

Register ``https://<host>/auth/callback/`` as a redirect URI of the app in Logto, and the
``POST_SIGN_OUT_REDIRECT`` URL (default ``https://<host>/``) as a post sign-out redirect URI,
and ``https://<host>/auth/backchannel-logout/`` as its back-channel logout URI.
"""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "logto_rs"

urlpatterns = [
    path("sign-in/", views.sign_in, name="sign_in"),
    path("sign-up/", views.sign_up, name="sign_up"),
    path("callback/", views.callback, name="callback"),
    path("sign-out/", views.sign_out, name="sign_out"),
    path("backchannel-logout/", views.backchannel_logout, name="backchannel_logout"),
]
