"""Wiring: build the python-telegram-bot Application around a QAService, and run it."""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial
from typing import Any, NoReturn, Sequence
from urllib.parse import urlsplit

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.error import NetworkError, TelegramError
from telegram.request import HTTPXRequest
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from tenacity import AsyncRetrying, RetryError, retry_if_exception_type, stop_after_attempt, wait_exponential

from ..answer import Answer
from ..batcher import MicroBatcher
from ..ingest import Ingester
from ..service import QAService
from ..settings import Settings
from . import handlers, news
from .context import BotApplication, BotContext, BotData, Core
from .filters import ADD_DOCUMENT, FROM_OTHER_BOT, MENTIONS_ME, REPLY_TO_ME
from .format import SOURCE_PREFIX
from .limits import QuestionLimits
from .logs import protect_logs
from .polling import TolerantBot
from .retry import RetryingRateLimiter
from .token import check_token

log = logging.getLogger(__name__)

PUBLIC_COMMANDS = (
    BotCommand("ask", "Ask a question about the articles"),
    BotCommand("help", "What I do and which articles I know"),
    BotCommand("start", "Start here"),
)
ALLOWED_UPDATES = [
    Update.MESSAGE, Update.EDITED_MESSAGE, Update.CHANNEL_POST, Update.EDITED_CHANNEL_POST,
    Update.INLINE_QUERY, Update.CALLBACK_QUERY,
]


def _answer_many(service: QAService, questions: Sequence[str]) -> list[Answer]:
    """Answer with the current index (swapped whole by a reindex) and count the answers."""
    answers = service.answerer.answer_many(questions)
    service.questions_answered += len(answers)
    return answers


async def _post_init(application: BotApplication) -> None:
    """Publish the public command menu once the bot knows who it is."""
    try:
        await application.bot.set_my_commands(PUBLIC_COMMANDS)
    except TelegramError as exc:
        log.warning("could not set the command menu: %s", exc)
    log.info("bot @%s ready", application.bot.username)


async def _post_stop(application: BotApplication) -> None:
    """Confirm every handled update to Telegram once all of them are answered (long polling).

    On stop, python-telegram-bot confirms the updates it fetched with one last getUpdates call,
    then answers those still pending. If that call fails, a restart would fetch and answer the
    last batch again; so confirm the newest handled update here, after the answers, with retries.
    """
    core = application.bot_data.core
    if core.last_update_id is None or core.settings.webhook_url:
        return
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(NetworkError),
            stop=stop_after_attempt(5),
            wait=wait_exponential(multiplier=0.2, max=2.0),
        ):
            with attempt:
                await application.bot.get_updates(offset=core.last_update_id + 1, timeout=0, limit=1)
    except (RetryError, TelegramError) as exc:  # e.g. 409: another instance is polling now
        error = exc.last_attempt.exception() if isinstance(exc, RetryError) else exc
        log.warning("could not confirm the last updates to Telegram (%s); after a restart, "
                    "up to 100 questions may be answered again", error)


async def _post_shutdown(application: BotApplication) -> None:
    """Stop the micro-batcher's worker."""
    await application.bot_data.core.batcher.close()


def add_handlers(application: BotApplication) -> None:
    """Route every kind of update to its handler; anything unmatched is left alone."""
    message, post = filters.UpdateType.MESSAGE, filters.UpdateType.CHANNEL_POST
    private, groups = filters.ChatType.PRIVATE, filters.ChatType.GROUPS
    skip = filters.UpdateType.EDITED | FROM_OTHER_BOT | filters.IS_AUTOMATIC_FORWARD | filters.VIA_BOT
    application.add_handler(TypeHandler(Update, handlers.note_update), group=-2)
    application.add_handler(MessageHandler(skip, handlers.ignore), group=-1)
    application.add_handlers([
        CommandHandler(["start", "help"], handlers.start, filters=message),
        CommandHandler("ask", handlers.ask, filters=message | post),
        CommandHandler("reindex", handlers.reindex, filters=message),
        CommandHandler("stats", handlers.stats, filters=message),
        MessageHandler(message & ADD_DOCUMENT, handlers.add_article),
        CommandHandler("add", news.add_links, filters=message),
        CommandHandler("feeds", news.list_feeds, filters=message),
        CommandHandler("feed", news.feed, filters=message),
        MessageHandler(message & private & news.FORWARDED_POST & (filters.TEXT | filters.CAPTION), news.forwarded_post),
        MessageHandler(message & private & filters.TEXT & news.JUST_A_LINK, news.private_link),
        MessageHandler(message & private & filters.TEXT & ~filters.COMMAND, handlers.private_question),
        MessageHandler(message & private & filters.COMMAND, handlers.unknown_command),
        MessageHandler(message & private & ~filters.TEXT & ~filters.StatusUpdate.ALL, handlers.not_text),
        MessageHandler(((message & groups) | post) & MENTIONS_ME, handlers.mentioned),
        MessageHandler(message & groups & filters.TEXT & ~filters.COMMAND & REPLY_TO_ME, handlers.replied),
        InlineQueryHandler(handlers.inline_query),
        CallbackQueryHandler(handlers.show_source, pattern=f"^{SOURCE_PREFIX}:"),
    ])
    application.add_error_handler(handlers.on_error)


def make_bot(settings: Settings) -> TolerantBot:
    """The Bot API client: TELEGRAM_* settings, HTML by default, flood limits and retries."""
    timeout = settings.telegram_timeout

    def request(pool_size: int) -> HTTPXRequest:
        return HTTPXRequest(connection_pool_size=pool_size, connect_timeout=timeout, read_timeout=timeout,
                            write_timeout=timeout)

    return TolerantBot(
        check_token(settings),
        base_url=settings.telegram_base_url,
        base_file_url=settings.telegram_base_file_url,
        request=request(256),
        get_updates_request=request(1),  # one long poll at a time
        defaults=Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)),
        rate_limiter=RetryingRateLimiter(settings.telegram_retries),
    )


def build_application(settings: Settings, service: QAService) -> BotApplication:
    """The bot for an opened QAService; nothing talks to Telegram until it is started."""
    protect_logs(settings)
    application: BotApplication = (
        ApplicationBuilder()
        .bot(make_bot(settings))
        .context_types(ContextTypes(context=BotContext, bot_data=BotData))
        .concurrent_updates(True)
        .post_init(_post_init)
        .post_stop(_post_stop)
        .post_shutdown(_post_shutdown)
        .build()
    )
    application.bot_data.attach(
        Core(
            settings=settings,
            service=service,
            batcher=MicroBatcher(partial(_answer_many, service)),
            limits=QuestionLimits(settings.user_rate_per_minute, settings.chat_rate_per_minute),
            news=news.News(Ingester(settings)),
        )
    )
    add_handlers(application)
    news.schedule_feeds(application)
    return application


def webhook_options(settings: Settings) -> dict[str, Any]:
    """Where to listen and what to tell Telegram in webhook mode (WEBHOOK_* settings)."""
    assert settings.webhook_url, "webhook mode needs WEBHOOK_URL"
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        "secret_token": secret or None,
        "allowed_updates": ALLOWED_UPDATES,
    }


def _stop(service: QAService) -> NoReturn:
    """A stop signal: end a running rebuild at once (the old index stays), then stop as PTB does."""
    service.stop_builds()
    raise SystemExit


def run_bot(settings: Settings, service: QAService) -> None:
    """Serve until SIGINT/SIGTERM: long polling, or a webhook when WEBHOOK_URL is set."""
    application = build_application(settings, service)
    loop = asyncio.new_event_loop()  # the loop run_polling/run_webhook take up, with our stop signals
    asyncio.set_event_loop(loop)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGABRT):
        loop.add_signal_handler(sig, _stop, service)
    if settings.webhook_url:
        application.run_webhook(**webhook_options(settings), stop_signals=None)
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES, stop_signals=None)
