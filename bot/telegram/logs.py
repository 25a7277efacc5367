"""Logging for `run`: the bot token (and webhook secret, database password) never reach a log line."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

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
    """The token, its secret half and their URL-encoded forms, the webhook secret and the database password."""
    secrets: list[str] = []
    if settings.telegram_bot_token is not None:
        token = settings.telegram_bot_token.get_secret_value().strip()
        secrets += [token, quote(token, safe=""), token.partition(":")[2]]
    if settings.webhook_secret is not None:
        secrets.append(settings.webhook_secret.get_secret_value())
    if settings.database_url is not None:
        secrets += database_passwords(settings.database_url.get_secret_value())
    return [s for s in secrets if len(s) >= 6]


def database_passwords(url: str) -> list[str]:
    """The password in a DATABASE_URL (postgresql://user:password@host/db, or password=... key/value form)."""
    found = [m.group(1).strip("'") for m in re.finditer(r"\bpassword\s*=\s*('[^']*'|[^\s&]+)", url)]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        found += [password, unquote(password)]
    return found


URL_LOGGERS = ("httpx", "httpcore")  # they log request URLs, and Bot API URLs hold the token


def protect_logs(settings: Settings) -> RedactSecrets:
    """Redact the secrets in place in the records of the loggers that log request URLs."""
    redactor = RedactSecrets(secrets_of(settings))
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RedactSecrets)]:
            logger.removeFilter(old)
        logger.addFilter(redactor)
    return redactor


class NoExpectedTracebacks(logging.Filter):
    """Drops the traceback of an expected failure (network down, token refused): its message says it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from telegram.error import InvalidToken, NetworkError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (NetworkError, InvalidToken)):
            record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", None
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(settings: Settings) -> RedactSecrets:
    """Log at LOG_LEVEL to stderr with secrets redacted everywhere; httpx's per-request lines off.

    LOG_LEVEL is for the bot's own loggers: libraries (faiss's loader, python-telegram-bot,
    httpx) log only warnings and errors unless LOG_LEVEL is DEBUG. Expected failures carry no
    traceback below DEBUG.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format=FORMAT, stream=sys.stderr)
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ValueError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {settings.log_level!r}")
    root.setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    logging.getLogger("bot").setLevel(level)
    redactor = protect_logs(settings)
    quiet = NoExpectedTracebacks()
    for handler in root.handlers:
        if level > logging.DEBUG and not any(isinstance(f, NoExpectedTracebacks) for f in handler.filters):
            handler.addFilter(quiet)  # before the redactor, which formats the traceback
        handler.addFilter(redactor)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return redactor
