"""Handlers: each adapts one kind of update to the answering core, in a few lines."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, NetworkError, TelegramError
from telegram.ext import ApplicationHandlerStop

from ..answer import QuestionError, clean_question
from .context import BotContext
from .format import (
    RATE_LIMITED,
    REFUSED,
    REINDEX_BUSY,
    SOURCE_GONE,
    TEXT_ONLY,
    UNKNOWN_COMMAND,
    USAGE_ASK,
    answer_html,
    failed_html,
    help_html,
    inline_result,
    parse_source_data,
    reindex_html,
    sources_keyboard,
    stats_html,
)
from .limits import Verdict
from .sending import reply_html, reply_plain, send_html, typing
from .sources import source_passage
from .uploads import Saved, UploadError, check_upload, decode_article, download, safe_name, save_article

log = logging.getLogger(__name__)

# What QAService.reindex raises when a rebuild fails: CorpusError (a ValueError), IndexProblem,
# ModelError, OnnxProblem and a failed rebuild process (RuntimeErrors), OSError.
REBUILD_ERRORS = (ValueError, RuntimeError, OSError)


# --- adapting updates to the core ------------------------------------------------------------


def is_admin(update: Update, admin_ids: frozenset[int]) -> bool:
    """The sender itself is in ADMIN_IDS: a forward's origin never counts, nor a group's own admins.

    An anonymous group admin (sender_chat set, user GroupAnonymousBot) counts only when that
    user id or the chat it posts as is listed.
    """
    message = update.effective_message
    ids = {update.effective_user.id} if update.effective_user else set()
    if message is not None and message.sender_chat is not None:
        ids.add(message.sender_chat.id)
    return bool(ids & admin_ids)


def asker_of(update: Update) -> int | None:
    """Whom a question counts against: the user, or the chat an anonymous admin or channel posts as.

    Anonymous admins of every group share one user (GroupAnonymousBot); each group's own is its chat.
    """
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return message.sender_chat.id
    return update.effective_user.id if update.effective_user else None


def message_of(update: Update) -> Message:
    """The update's message or channel post (the only updates routed to message handlers)."""
    message = update.effective_message
    if message is None:
        raise TypeError(f"update {update.update_id} has no message")
    return message


def command_argument(message: Message) -> str:
    """The text after a leading /command (or /command@Bot)."""
    text = message.text or ""
    command = text.split(maxsplit=1)
    return command[1].strip() if len(command) > 1 else ""


def without_mention(message: Message) -> str:
    """The text with the @mentions of this bot taken out."""
    username = re.escape(message.get_bot().username)
    return re.sub(rf"@{username}\b[:,]?", " ", message.text or "", flags=re.IGNORECASE).strip()


async def answer_question(update: Update, context: BotContext, question: str) -> None:
    """Answer one question in the chat it came from: limits, typing, one reply with source buttons."""
    message = message_of(update)
    try:
        question = clean_question(question)
    except QuestionError as exc:
        await reply_plain(message, str(exc))
        return
    verdict = await context.limits.verdict(asker_of(update), message.chat_id)
    if verdict is not Verdict.ANSWER:
        if verdict is Verdict.NOTICE:
            await reply_plain(message, RATE_LIMITED)
        return
    started = time.perf_counter()
    async with typing(message):
        answer = await context.batcher.answer(question)
    await reply_html(message, answer_html(answer), sources_keyboard(answer))
    log.info(
        "question %s in %s chat: %d citations, %.0f ms",
        "answered" if answer.answered else "declined",
        message.chat.type,
        len(answer.citations),
        (time.perf_counter() - started) * 1000,
    )


async def rebuild(context: BotContext, saved: Saved | None = None) -> str:
    """Rebuild the index off the event loop (one rebuild at a time) and say what changed."""
    async with context.core.reindex_lock:
        try:
            report = await asyncio.to_thread(context.service.reindex)
        except REBUILD_ERRORS as exc:
            log.warning("reindex failed, still serving the previous index: %s", exc)
            return failed_html("Reindex", exc)
    return reindex_html(report, saved.name if saved else None, bool(saved and saved.replaced))


async def receive_article(message: Message, context: BotContext) -> Saved:
    """Download an /add document over HTTP, check it and write it into the corpus folder."""
    document = message.document
    assert document is not None
    limit = context.settings.max_upload_bytes
    check_upload(document.file_name, document.file_size, limit)
    content = await download(context.bot, document.file_id, limit)
    name = safe_name(document.file_name, content)
    text = decode_article(name, content, limit)
    return await asyncio.to_thread(save_article, context.settings.corpus_dir, name, text)


# --- callbacks ---------------------------------------------------------------------------------


async def ignore(update: Update, context: BotContext) -> None:
    """Stop here: edits, other bots' messages and automatic forwards are never answered."""
    raise ApplicationHandlerStop


async def start(update: Update, context: BotContext) -> None:
    """Explain the bot in a few lines and list the articles it knows (/start, /help)."""
    articles = context.service.answerer.index.articles.values()
    await reply_html(message_of(update), help_html(context.bot.username, articles))


async def private_question(update: Update, context: BotContext) -> None:
    """Answer a text message in a private chat."""
    await answer_question(update, context, message_of(update).text or "")


async def _answer_or_usage(update: Update, context: BotContext, question: str) -> None:
    """Answer the question, or say how to ask when there is none."""
    if not question:
        await reply_plain(message_of(update), USAGE_ASK)
        return
    await answer_question(update, context, question)


async def ask(update: Update, context: BotContext) -> None:
    """Answer `/ask question` in any chat, or show how to use it."""
    await _answer_or_usage(update, context, command_argument(message_of(update)))


async def mentioned(update: Update, context: BotContext) -> None:
    """Answer a group message or channel post that mentions the bot."""
    await _answer_or_usage(update, context, without_mention(message_of(update)))


async def replied(update: Update, context: BotContext) -> None:
    """Answer a reply to one of the bot's messages in a group."""
    await answer_question(update, context, message_of(update).text or "")


async def not_text(update: Update, context: BotContext) -> None:
    """Ask for a question in text when a private message is a sticker, photo, voice…"""
    await reply_plain(message_of(update), TEXT_ONLY)


async def unknown_command(update: Update, context: BotContext) -> None:
    """Point to /help for a command the bot does not have (private chats)."""
    await reply_plain(message_of(update), UNKNOWN_COMMAND)


async def inline_query(update: Update, context: BotContext) -> None:
    """Offer the answer to `@Bot question` as an inline result."""
    query = update.inline_query
    assert query is not None  # InlineQueryHandler routes only inline queries
    try:
        question = clean_question(query.query)
    except QuestionError:
        await query.answer([], cache_time=5)
        return
    if not await context.limits.allow(query.from_user.id, None):
        await query.answer([], cache_time=0, is_personal=True)
        return
    answer = await context.batcher.answer(question)
    await query.answer([inline_result(answer)], cache_time=60)


async def show_source(update: Update, context: BotContext) -> None:
    """Show the passage around a cited sentence, as a reply to the answer (sources button)."""
    query = update.callback_query
    assert query is not None  # CallbackQueryHandler routes only callback queries
    wanted = parse_source_data(query.data or "")
    if wanted is None:
        await query.answer()
        return
    if await context.limits.verdict(query.from_user.id, None) is not Verdict.ANSWER:
        await query.answer(RATE_LIMITED, show_alert=True)
        return
    passage = await asyncio.to_thread(source_passage, context.service.answerer, *wanted)
    await query.answer(SOURCE_GONE if passage is None else None, show_alert=passage is None)
    if passage is not None and query.message is not None:
        await send_html(context.bot, query.message.chat.id, passage, reply_to=query.message.message_id)


async def other_button(update: Update, context: BotContext) -> None:
    """Answer a button press that is not a Sources button, so that it stops spinning."""
    assert update.callback_query is not None  # CallbackQueryHandler routes only callback queries
    await update.callback_query.answer()


async def refused(update: Update, context: BotContext) -> bool:
    """Refuse, and say so, unless the sender is in ADMIN_IDS."""
    if is_admin(update, context.settings.admin_ids):
        return False
    await reply_plain(message_of(update), REFUSED)
    return True


async def reindex(update: Update, context: BotContext) -> None:
    """Rebuild the index from the corpus folder and report what changed (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    if context.core.reindex_lock.locked():
        await reply_plain(message, REINDEX_BUSY)
        return
    async with typing(message):
        report = await rebuild(context)
    await reply_html(message, report)


async def add_article(update: Update, context: BotContext) -> None:
    """Put an uploaded .txt/.md article into the corpus and reindex (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    try:
        async with typing(message):
            saved = await receive_article(message, context)
            report = await rebuild(context, saved)
    except UploadError as exc:
        await reply_plain(message, str(exc))
        return
    log.info("article %s %s by an admin", saved.name, "replaced" if saved.replaced else "added")
    await reply_html(message, report)


async def stats(update: Update, context: BotContext) -> None:
    """Show articles, sentences, uptime and questions answered (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    answered = await asyncio.to_thread(context.core.stats.answers)
    await reply_html(message, stats_html(context.service, answered))


async def on_error(update: object, context: BotContext) -> None:
    """Log every error once; users never see a traceback."""
    error = context.error
    if isinstance(error, Forbidden):
        log.warning("Telegram refused to deliver a message (bot blocked or removed?): %s", error.message)
    elif isinstance(error, NetworkError):
        log.warning("problem talking to Telegram: %s", error)
    else:
        log.error("error while handling an update", exc_info=error)
        await _apologise(update)


async def _apologise(update: object) -> None:
    if not isinstance(update, Update) or update.effective_message is None:
        return
    if update.effective_chat is None or update.effective_chat.type != ChatType.PRIVATE:
        return
    try:
        await reply_plain(update.effective_message, "Sorry, something went wrong on my side; please try again.")
    except TelegramError as exc:
        log.warning("could not tell the user about the error: %s", exc)
