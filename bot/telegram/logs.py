"""Logging for `run`: the bot token (and webhook secret) never reach a log line."""

from __future__ import annotations

import logging
import sys
from typing import Iterable
from urllib.parse import quote

from ..settings import Settings

REDACTED = "[REDACTED]"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces secrets in a record's message, traceback and stack with [REDACTED]."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def secrets_of(settings: Settings) -> list[str]:
    """The token, its secret half and their URL-encoded forms, and the webhook secret."""
    secrets: list[str] = []
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value().strip()
        secrets += [token, quote(token, safe=""), token.partition(":")[2]]
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    return [s for s in secrets if len(s) >= 6]


def configure_logging(settings: Settings) -> RedactSecrets:
    """Log at LOG_LEVEL to stderr, secrets redacted, httpx's per-request URL lines off."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=FORMAT, stream=sys.stderr)
    root.setLevel(settings.log_level.upper())
    redactor = RedactSecrets(secrets_of(settings))
    for handler in root.handlers:
        handler.addFilter(redactor)
    httpx_log = logging.getLogger("httpx")  # its INFO lines carry request URLs, which hold the token
    httpx_log.setLevel(logging.WARNING)
    httpx_log.addFilter(redactor)  # redacts in place, for handlers added later too
    return redactor
