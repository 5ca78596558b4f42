"""The Django site the Django tests drive: settings from the environment, test views, DRF views.

``setup()`` configures Django once per process with ``django_site.settings`` and creates the
database tables (SQLite, a file in a temporary directory unless ``DJANGO_DB_PATH`` names one).
"""

from __future__ import annotations

import os

_done = False


def setup() -> None:
    """``django.setup()`` with these settings, then ``migrate`` (once per process)."""
    global _done
    if _done:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    _done = True
