"""Settings of the logto-rs Django demo (values from the environment; see ../serve.py)."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "demo_site.urls"
WSGI_APPLICATION = "demo_site.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "logto_rs.django",
    "demo_site",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After the session and auth middleware: request.logto, and ended Logto sessions → sign in.
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
        "NAME": os.environ.get("DJANGO_DB_PATH") or BASE_DIR / "db.sqlite3",
    }
}
if os.environ.get("LOGTO_REDIS_URL"):
    # Sessions and the refresh lock in Redis: any number of workers and hosts.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["LOGTO_REDIS_URL"],
        }
    }
    SESSION_ENGINE = "django.contrib.sessions.backends.cache"
else:
    SILENCED_SYSTEM_CHECKS = ["logto_rs.W002"]  # one runserver process: its in-memory lock is enough

# A Logto sign-in logs a Django user in: request.user, @login_required and the admin work.
AUTHENTICATION_BACKENDS = ["logto_rs.django.backends.LogtoBackend"]
LOGIN_URL = "logto_rs:sign_in"
LOGIN_REDIRECT_URL = "/"

API = "https://api.example.com"
LOGTO = {
    "ENDPOINT": os.environ.get("LOGTO_ENDPOINT", "http://127.0.0.1:3001"),
    "APP_ID": os.environ.get("LOGTO_APP_ID", "web-app"),
    "APP_SECRET": os.environ.get("LOGTO_APP_SECRET") or None,
    "SCOPES": [
        "email",
        "custom_data",
        "identities",
        "roles",
        "urn:logto:scope:organizations",
        "urn:logto:scope:organization_roles",
        "read:members",
        "read:products",
    ],
    "RESOURCES": [API],
    "AUDIENCE": API,  # what the DRF endpoint accepts
    "GROUP_CLAIMS": ["roles"],  # Logto roles become Django groups
    "STAFF_ROLES": ["product-admin"],  # and this role opens the admin
    "SUPERUSER_ROLES": ["product-admin"],
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["logto_rs.django.drf.LogtoTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["logto_rs.django.drf.HasScopes"],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "demo_site.log_filters.RedactCallbackQuery"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
