"""The Django app: validates ``settings.LOGTO`` at start-up and registers the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class LogtoAppConfig(AppConfig):
    """``logto_rs.django`` (label ``logto_rs``)."""

    name = "logto_rs.django"
    label = "logto_rs"
    verbose_name = "Logto"

    def ready(self) -> None:
        """Validate ``settings.LOGTO`` (raising ``ImproperlyConfigured``) and register the checks."""
        from . import checks, conf

        conf.get_settings()
        checks.register()
