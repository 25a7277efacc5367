"""Sending replies: split at 4,096 characters, threaded, plain-text fallback, typing indicator.

`ReplyBot.send_message` also follows Telegram's documented answers: a group upgraded to a
supergroup (400 with migrate_to_chat_id) gets the message in its new chat, remembered in the
inbox for later replies; a deleted forum topic ("message thread not found") gets it without
the thread. Every text sent has the bot's secrets taken out, whatever produced it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext
from typing import Any

from telegram import Bot, InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, ChatMigrated, TelegramError
from telegram.ext import ExtBot

from ..render import split_message
from .format import html_to_plain, pieces
from .inbox import Inbox

log = logging.getLogger(__name__)

TYPING_EVERY = 4.5  # Telegram shows a chat action for about five seconds
TYPING_AFTER = 0.5  # "typing…" only for an answer not ready within this many seconds
THREAD_GONE = "message thread not found"


class ReplyBot(ExtBot[int]):
    """The Bot API client: sends follow chat migrations and vanished topics, and never carry a secret."""

    def __init__(self, *args: Any, inbox: Inbox, secrets: Iterable[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = inbox
        self._answers_due: Counter[int] = Counter()  # per chat: questions being answered right now
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    @property
    def inbox(self) -> Inbox:
        """The durable inbox: where updates wait, and which chats moved."""
        return self._inbox

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def _target(self, chat_id: Any) -> Any:
        return self.inbox.moved_to(chat_id) or chat_id if isinstance(chat_id, int) else chat_id

    async def send_message(self, chat_id: Any, text: str, *args: Any, **kwargs: Any) -> Message:
        """sendMessage to the chat (or where it moved), without the thread when the topic is gone."""
        text, target = self._clean(text), self._target(chat_id)
        try:
            return await super().send_message(target, text, *args, **kwargs)
        except ChatMigrated as exc:
            new_id = int(exc.new_chat_id)
            log.info("chat %s became supergroup %s; replying there from now on", target, new_id)
            await asyncio.to_thread(self.inbox.remember_move, int(target), new_id)
            kwargs.pop("message_thread_id", None)
            return await super().send_message(new_id, text, *args, **kwargs)
        except BadRequest as exc:
            if THREAD_GONE not in exc.message.lower() or kwargs.get("message_thread_id") is None:
                raise
            log.info("the topic of a reply in chat %s is gone; sending it to the chat itself", target)
            kwargs["message_thread_id"] = None
            return await super().send_message(target, text, *args, **kwargs)

    async def send_chat_action(self, chat_id: Any, action: str, *args: Any, **kwargs: Any) -> bool:
        """A chat action where the chat is now; the rate limiter learns how many answers it must leave room for."""
        kwargs.setdefault("rate_limit_args", self._answers_due[chat_id] if isinstance(chat_id, int) else 0)
        return await super().send_chat_action(self._target(chat_id), action, *args, **kwargs)

    @contextmanager
    def answer_due(self, chat_id: int) -> Iterator[None]:
        """Count an answer on its way to the chat (a chat action must never take its place)."""
        self._answers_due[chat_id] += 1
        try:
            yield
        finally:
            self._answers_due[chat_id] -= 1
            if not self._answers_due[chat_id]:
                del self._answers_due[chat_id]


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
            bot,
            chat_id,
            part,
            reply_to if n == 0 else None,
            thread_id,
            keyboard if n == len(parts) - 1 else None,
        )
    assert sent is not None
    return sent


async def _send_part(
    bot: Bot,
    chat_id: int,
    part: str,
    reply_to: int | None,
    thread_id: int | None,
    keyboard: InlineKeyboardMarkup | None,
) -> Message:
    reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to is not None else None
    try:
        return await bot.send_message(
            chat_id,
            part,
            parse_mode=ParseMode.HTML,
            reply_parameters=reply,
            message_thread_id=thread_id,
            reply_markup=keyboard,
        )
    except BadRequest as exc:
        if "can't parse entities" not in exc.message.lower():
            raise
        log.warning("Telegram rejected a reply's HTML (%s); sending it as plain text", exc.message)
    plain = split_message(html_to_plain(part)) or [""]
    sent: Message | None = None
    for n, text in enumerate(plain):
        sent = await bot.send_message(
            chat_id,
            text,
            parse_mode=None,
            reply_parameters=reply if n == 0 else None,
            message_thread_id=thread_id,
            reply_markup=keyboard if n == len(plain) - 1 else None,
        )
    assert sent is not None
    return sent


async def reply_html(message: Message, text: str, keyboard: InlineKeyboardMarkup | None = None) -> Message:
    """Answer a message with HTML in its chat, threaded to it outside private chats."""
    return await send_html(
        message.get_bot(),
        message.chat_id,
        text,
        reply_to=message.message_id if _threaded(message) else None,
        thread_id=_thread_id(message),
        keyboard=keyboard,
    )


async def reply_plain(message: Message, text: str) -> Message:
    """A short plain-text reply (refusals, hints), threaded outside private chats."""
    reply = ReplyParameters(message.message_id, allow_sending_without_reply=True) if _threaded(message) else None
    return await message.get_bot().send_message(
        message.chat_id,
        text,
        parse_mode=None,
        reply_parameters=reply,
        message_thread_id=_thread_id(message),
    )


async def _keep_typing(bot: Bot, chat_id: int, thread_id: int | None) -> None:
    await asyncio.sleep(TYPING_AFTER)
    while True:
        try:
            await bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)
        except TelegramError as exc:  # a chat action is cosmetic: never fail an answer for it
            log.debug("could not show typing in chat %s: %s", chat_id, exc)
            return
        await asyncio.sleep(TYPING_EVERY)


@asynccontextmanager
async def typing(message: Message) -> AsyncIterator[None]:
    """Show "typing…" in the message's chat while the body runs, when it takes over TYPING_AFTER."""
    bot = message.get_bot()
    due: AbstractContextManager[None] = bot.answer_due(message.chat_id) if isinstance(bot, ReplyBot) else nullcontext()
    task = asyncio.create_task(_keep_typing(bot, message.chat_id, _thread_id(message)))
    try:
        with due:
            yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
