"""The bot token check, kept light so a bad token is reported before anything heavy loads."""

from __future__ import annotations

import re

from ..settings import Settings

TOKEN_SHAPE = re.compile(r"^\d+:[A-Za-z0-9_-]+$")


class TokenProblem(ValueError):
    """TELEGRAM_BOT_TOKEN is missing or malformed; the message says so in one line."""


def check_token(settings: Settings) -> str:
    """The bot token, or TokenProblem (the message never contains the token)."""
    if settings.telegram_bot_token is None:
        raise TokenProblem(
            "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and set it in the environment or .env"
        )
    token = settings.telegram_bot_token.get_secret_value().strip()
    if not TOKEN_SHAPE.match(token):
        raise TokenProblem(
            "TELEGRAM_BOT_TOKEN is malformed: a bot token looks like 123456789:AAE... "
            "(digits, a colon, then letters, digits, '_' or '-')"
        )
    return token
