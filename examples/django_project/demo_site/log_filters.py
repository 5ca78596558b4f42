"""Keeps authorization codes and states out of runserver's access log."""

from __future__ import annotations

import logging
import re

SECRET_PARAMETER = re.compile(r"([?&;](?:code|state)=)[^&;\s\"]*")


class RedactCallbackQuery(logging.Filter):
    """Replaces the values of ``code`` and ``state`` in request lines (the callback carries them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET_PARAMETER.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
