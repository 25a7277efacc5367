"""Wiring: build the python-telegram-bot Application around a QAService, and run it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from ..answer import Answer
from ..batcher import MicroBatcher
from ..ingest import Ingester
from ..service import QAService
from ..settings import Settings
from . import handlers, news
from .context import BotApplication, BotContext, BotData, Core
from .filters import ADD_DOCUMENT, FROM_OTHER_BOT, MENTIONS_ME, REPLY_TO_ME
from .format import SOURCE_PREFIX
from .inbox import INBOX_FILE, Inbox, SqliteInbox
from .limits import QuestionLimits
from .logs import protect_logs, secrets_of
from .polling import Feed
from .retry import FairRateLimiter
from .sending import ReplyBot
from .state import MemoryStats, State, Stats, bot_id_of
from .token import check_token

log = logging.getLogger(__name__)

PUBLIC_COMMANDS = (
    BotCommand("ask", "Ask a question about the articles"),
    BotCommand("help", "What I do and which articles I know"),
    BotCommand("start", "Start here"),
)
ALLOWED_UPDATES = [
    Update.MESSAGE,
    Update.EDITED_MESSAGE,
    Update.CHANNEL_POST,
    Update.EDITED_CHANNEL_POST,
    Update.INLINE_QUERY,
    Update.CALLBACK_QUERY,
]


def _answer_many(service: QAService, stats: Stats, questions: Sequence[str]) -> list[Answer]:
    """Answer with the current index (swapped whole by a reindex) and count the answers."""
    answers = service.answerer.answer_many(questions)
    stats.count_answers(len(answers))
    return answers


async def _announce(application: BotApplication) -> None:
    """Publish the public command menu once the bot knows who it is."""
    try:
        await application.bot.set_my_commands(PUBLIC_COMMANDS)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)
    log.info("bot @%s ready", application.bot.username)


def add_handlers(application: BotApplication) -> None:
    """Route every kind of update to its handler; anything unmatched is left alone."""
    message, post = filters.UpdateType.MESSAGE, filters.UpdateType.CHANNEL_POST
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    skip = filters.UpdateType.EDITED | FROM_OTHER_BOT | filters.IS_AUTOMATIC_FORWARD | filters.VIA_BOT
    application.add_handler(MessageHandler(skip, handlers.ignore), group=-1)
    application.add_handlers(
        [
            CommandHandler(["start", "help"], handlers.start, filters=message),
            CommandHandler("ask", handlers.ask, filters=message | post),
            CommandHandler("reindex", handlers.reindex, filters=message),
            CommandHandler("stats", handlers.stats, filters=message),
            MessageHandler(message & ADD_DOCUMENT, handlers.add_article),
            CommandHandler("add", news.add_links, filters=message),
            CommandHandler("feeds", news.list_feeds, filters=message),
            CommandHandler("feed", news.feed, filters=message),
            MessageHandler(
                message & private & news.FORWARDED_POST & (filters.TEXT | filters.CAPTION), news.forwarded_post
            ),
            MessageHandler(message & private & filters.TEXT & news.JUST_A_LINK, news.private_link),
            MessageHandler(message & private & filters.TEXT & ~filters.COMMAND, handlers.private_question),
            MessageHandler(message & private & filters.COMMAND, handlers.unknown_command),
            MessageHandler(message & private & ~filters.TEXT & ~filters.StatusUpdate.ALL, handlers.not_text),
            MessageHandler(((message & groups) | post) & MENTIONS_ME, handlers.mentioned),
            MessageHandler(message & groups & filters.TEXT & ~filters.COMMAND & REPLY_TO_ME, handlers.replied),
            InlineQueryHandler(handlers.inline_query),
            CallbackQueryHandler(handlers.show_source, pattern=f"^{SOURCE_PREFIX}:"),
            CallbackQueryHandler(handlers.other_button),
        ]
    )
    application.add_error_handler(handlers.on_error)


def open_state(settings: Settings, token: str) -> State:
    """Where the inbox, the rate limits and the stats live: a SQLite file beside the index and this
    process's memory, or PostgreSQL when DATABASE_URL is set (shared by every replica).

    Raises bot.db.DatabaseProblem when the database cannot be used (unreachable, not migrated).
    """
    bot_id = bot_id_of(token)
    if settings.database_url is not None:
        from .shared import open_shared

        return open_shared(settings.database_url.get_secret_value(), bot_id, settings)
    return State(
        inbox=SqliteInbox(settings.index_dir / INBOX_FILE, bot_id, owner=f"pid-{os.getpid()}"),
        limits=QuestionLimits(settings.user_rate_per_minute, settings.chat_rate_per_minute),
        stats=MemoryStats(),
    )


def make_bot(settings: Settings, inbox: Inbox) -> ReplyBot:
    """The Bot API client: TELEGRAM_* settings, HTML by default, flood limits and bounded retries."""
    timeout = settings.telegram_timeout

    def request(pool_size: int) -> HTTPXRequest:
        return HTTPXRequest(
            connection_pool_size=pool_size, connect_timeout=timeout, read_timeout=timeout, write_timeout=timeout
        )

    token = check_token(settings)
    return ReplyBot(
        token,
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=request(256),
        get_updates_request=request(1),  # one long poll at a time
        defaults=Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)),
        rate_limiter=FairRateLimiter(settings.telegram_retries),
        inbox=inbox,
        secrets=secrets_of(settings),
    )


def build_application(settings: Settings, service: QAService, state: State | None = None) -> BotApplication:
    """The bot for an opened QAService; nothing talks to Telegram until it is started.

    `state` (the inbox, limits and stats) is opened from the settings when not given (see
    bot.telegram.state); closing the bot's inbox releases it.
    """
    protect_logs(settings)
    state = state if state is not None else open_state(settings, check_token(settings))
    application: BotApplication = (
        ApplicationBuilder()
        .bot(make_bot(settings, state.inbox))
        .updater(None)  # updates come in through the inbox (polling.Feed)
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        .concurrent_updates(True)
        .build()
    )
    application.bot_data.attach(
        Core(
            settings=settings,
            service=service,
            batcher=MicroBatcher(partial(_answer_many, service, state.stats)),
            limits=state.limits,
            stats=state.stats,
            news=news.News(Ingester(settings)),
        )
    )
    add_handlers(application)
    news.schedule_feeds(application)
    return application


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Where to listen and what to tell Telegram in webhook mode (WEBHOOK_* settings)."""
    if not settings.webhook_url:
        raise ValueError("webhook mode needs WEBHOOK_URL")
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        "secret": secret or None,
    }


async def _introduce(application: BotApplication) -> None:
    """initialize() (getMe); a Bot API answer that is not a bot user is a TelegramError, not a traceback."""
    try:
        await application.initialize()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise TelegramError(
            f"the Bot API answered getMe with something that is not a bot ({type(exc).__name__})"
        ) from None


@asynccontextmanager
async def serving(settings: Settings, application: BotApplication) -> AsyncIterator[Feed]:
    """The application started and fed from the inbox (long polling or webhook); stopped on exit.

    On exit the feed stops taking updates, the handlers get a few seconds, and what they did not
    finish stays pending in the inbox for the next start.
    """
    bot = application.bot
    assert isinstance(bot, ReplyBot)
    feed = Feed(application, bot.inbox, settings.inbox_keep_hours * 3600, ALLOWED_UPDATES)
    await _introduce(application)
    try:
        await _announce(application)
        await application.start()
        try:
            try:
                if settings.webhook_url:
                    await feed.start_webhook(**webhook_options(settings))
                else:
                    await feed.start_polling()
                yield feed
            finally:
                await feed.stop()
        finally:
            await application.stop()
    finally:
        await application.shutdown()
        await application.bot_data.core.batcher.close()


async def _serve_until_signalled(settings: Settings, application: BotApplication) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop_now() -> None:
        """A stop signal: end a running rebuild at once (the old index stays), then stop serving."""
        application.bot_data.core.service.stop_builds()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_now)
    async with serving(settings, application) as feed:
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *feed.background()], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stopped}:
            task.result()  # a fatal polling error (e.g. the token was revoked) ends the bot
        log.info("stopping: %d questions dropped by rate limits this run", application.bot_data.core.limits.dropped)


def run_bot(settings: Settings, service: QAService) -> None:
    """Serve until SIGINT/SIGTERM: long polling, or a webhook when WEBHOOK_URL is set."""
    application = build_application(settings, service)
    try:
        asyncio.run(_serve_until_signalled(settings, application))
    finally:
        bot = application.bot
        if isinstance(bot, ReplyBot):
            bot.inbox.close()
