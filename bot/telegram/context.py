"""Typed shared state for the handlers: settings, QA service, batcher, limits, stats (no globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import Application, CallbackContext, ExtBot

from ..batcher import MicroBatcher
from ..service import QAService
from ..settings import Settings
from .limits import Limits
from .sending import ReplyBot
from .state import Stats

if TYPE_CHECKING:
    from .news import News


@dataclass
class Core:
    """Everything a handler may use, built once by `build_application`."""

    settings: Settings
    service: QAService
    batcher: MicroBatcher
    limits: Limits
    stats: Stats
    reindex_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    news: News | None = None  # links and feeds (bot.ingest), attached by build_application


class BotData:
    """`application.bot_data`: holds the Core once `attach` has been called."""

    def __init__(self) -> None:
        self._core: Core | None = None

    def attach(self, core: Core) -> None:
        """Give the handlers their core (called once while wiring the application)."""
        self._core = core

    @property
    def core(self) -> Core:
        if self._core is None:
            raise RuntimeError("BotData.attach() was not called: use build_application()")
        return self._core


# ExtBot[int]: with AIORateLimiter, a call's rate_limit_args is an int (its max retries).
class BotContext(CallbackContext[ExtBot[int], dict[Any, Any], dict[Any, Any], BotData]):
    """The callback context, with shortcuts to the shared core."""

    @property
    def core(self) -> Core:
        return self.bot_data.core

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def service(self) -> QAService:
        return self.core.service

    @property
    def batcher(self) -> MicroBatcher:
        return self.core.batcher

    @property
    def limits(self) -> Limits:
        return self.core.limits


BotApplication = Application[ReplyBot, BotContext, dict[Any, Any], dict[Any, Any], BotData, Any]
