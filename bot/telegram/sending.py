"""Sending replies: split at 4,096 characters, threaded, plain-text fallback, typing indicator."""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from typing import AsyncIterator

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, TelegramError

from ..render import split_message
from .format import html_to_plain, pieces

log = logging.getLogger(__name__)

TYPING_EVERY = 4.5  # Telegram shows a chat action for about five seconds
FIRST_ACTION_WAIT = 1.0


def _thread_id(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def _threaded(message: Message) -> bool:
    """Replies quote the question everywhere but in private chats."""
    return message.chat.type != ChatType.PRIVATE


async def send_html(
    bot: Bot,
    chat_id: int,
    text: str,
    *,
    reply_to: int | None = None,
    thread_id: int | None = None,
    keyboard: InlineKeyboardMarkup | None = None,
) -> Message:
    """Send Telegram HTML as one message, or several when over 4,096 characters (keyboard last)."""
    parts = pieces(text)
    sent: Message | None = None
    for n, part in enumerate(parts):
        sent = await _send_part(
            bot, chat_id, part, reply_to if n == 0 else None, thread_id,
            keyboard if n == len(parts) - 1 else None,
        )
    assert sent is not None
    return sent


async def _send_part(
    bot: Bot, chat_id: int, part: str, reply_to: int | None, thread_id: int | None,
    keyboard: InlineKeyboardMarkup | None,
) -> Message:
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to is not None else None
    try:
        return await bot.send_message(
            chat_id, part, parse_mode=ParseMode.HTML, reply_parameters=reply,
            message_thread_id=thread_id, reply_markup=keyboard,
        )
    except BadRequest as exc:
        if "can't parse entities" not in exc.message.lower():
            raise
        log.warning("Telegram rejected a reply's HTML (%s); sending it as plain text", exc.message)
    plain = split_message(html_to_plain(part)) or [""]
    sent: Message | None = None
    for n, text in enumerate(plain):
        sent = await bot.send_message(
            chat_id, text, parse_mode=None, reply_parameters=reply if n == 0 else None,
            message_thread_id=thread_id, reply_markup=keyboard if n == len(plain) - 1 else None,
        )
    assert sent is not None
    return sent


async def reply_html(message: Message, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message:
    """Answer a message with HTML in its chat, threaded to it outside private chats."""
    return await send_html(
        message.get_bot(), message.chat_id, text,
        reply_to=message.message_id if _threaded(message) else None,
        thread_id=_thread_id(message), keyboard=keyboard,
    )


async def reply_plain(message: Message, text: str) -> Message:
    """A short plain-text reply (refusals, hints), threaded outside private chats."""
    reply = ReplyParameters(message.message_id, allow_sending_without_reply=True) if _threaded(message) else None
    return await message.get_bot().send_message(
        message.chat_id, text, parse_mode=None, reply_parameters=reply, message_thread_id=_thread_id(message),
    )


async def _keep_typing(bot: Bot, chat_id: int, thread_id: int | None, first_done: asyncio.Event) -> None:
    try:
        while True:
            try:
                await bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)
            except TelegramError as exc:  # a chat action is cosmetic: never fail an answer for it
                log.debug("could not show typing in chat %s: %s", chat_id, exc)
                return
            finally:
                first_done.set()
            await asyncio.sleep(TYPING_EVERY)
    finally:
        first_done.set()


@asynccontextmanager
async def typing(message: Message) -> AsyncIterator[None]:
    """Show "typing…" in the message's chat while the body runs (the reply comes after it)."""
    first_done = asyncio.Event()
    task = asyncio.create_task(_keep_typing(message.get_bot(), message.chat_id, _thread_id(message), first_done))
    try:
        yield
    finally:
        try:  # the reply should follow the chat action, but never wait long for it
            await asyncio.wait_for(first_done.wait(), timeout=FIRST_ACTION_WAIT)
        except TimeoutError:
            pass
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
