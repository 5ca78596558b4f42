"""Settings of the test site. The environment chooses the provider, the app and the stores:

``LOGTO_ENDPOINT``, ``LOGTO_APP_ID``, ``LOGTO_APP_SECRET`` (unset or empty: a public app),
``DJANGO_DB_PATH`` (SQLite file), ``REDIS_URL`` (the default cache becomes Django's RedisCache),
``SESSION_ENGINE``.
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "test-only-not-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "django_site.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "logto_rs.django",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "logto_rs.django.middleware.LogtoMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH")
        or os.path.join(tempfile.mkdtemp(prefix="logto-rs-django-"), "db.sqlite3"),
        "OPTIONS": {"timeout": 30},
    }
}
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {
            "BACKEND": (
                "logto_rs.django.redis_cluster.RedisClusterCache"
                if os.environ.get("REDIS_TOPOLOGY") == "cluster"
                else "django.core.cache.backends.redis.RedisCache"
            ),
            "LOCATION": os.environ["REDIS_URL"],
        }
    }
SESSION_ENGINE = os.environ.get("SESSION_ENGINE", "django.contrib.sessions.backends.db")

AUTHENTICATION_BACKENDS = ["logto_rs.django.backends.LogtoBackend"]
LOGIN_URL = "logto_rs:sign_in"
LOGIN_REDIRECT_URL = "/"

API = "https://api.example.com"
LOGTO = {
    "ENDPOINT": os.environ.get("LOGTO_ENDPOINT", "http://127.0.0.1:9"),
    "APP_ID": os.environ.get("LOGTO_APP_ID", "web-app"),
    "APP_SECRET": os.environ.get("LOGTO_APP_SECRET", "web-app-secret") or None,
    "SCOPES": [
        "email",
        "roles",
        "urn:logto:scope:organizations",
        "urn:logto:scope:organization_roles",
        "read:products",
    ],
    "RESOURCES": [API],
    "AUDIENCE": API,
    "GROUP_CLAIMS": ["roles"],
    "STAFF_ROLES": ["product-admin"],
    "SUPERUSER_ROLES": ["product-admin"],
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["logto_rs.django.drf.LogtoTokenAuthentication"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
