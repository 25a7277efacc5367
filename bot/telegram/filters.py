"""Message filters that need the bot's own identity, known only after getMe."""

from __future__ import annotations

import re

from telegram import Message, MessageEntity
from telegram.ext import filters

ADD_CAPTION = re.compile(r"^/add(?:@(\w+))?(?:\s|$)", re.IGNORECASE)


def mentions_bot(message: Message) -> bool:
    """True when the text mentions this bot by @username."""
    username = message.get_bot().username.lower()
    return any(
        text.lstrip("@").lower() == username for text in message.parse_entities([MessageEntity.MENTION]).values()
    )


class _MentionsMe(filters.MessageFilter):
    """Messages whose text mentions @<this bot>."""

    def filter(self, message: Message) -> bool:
        return bool(message.text) and mentions_bot(message)


class _ReplyToMe(filters.MessageFilter):
    """Replies to one of this bot's own messages."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return bool(replied and replied.from_user and replied.from_user.id == message.get_bot().id)


class _FromOtherBot(filters.MessageFilter):
    """Messages sent by a bot account (anonymous admins and channels are not counted as bots)."""

    def filter(self, message: Message) -> bool:
        return bool(message.from_user and message.from_user.is_bot and message.sender_chat is None)


class _AddCaption(filters.MessageFilter):
    """Documents captioned /add (or /add@<this bot>)."""

    def filter(self, message: Message) -> bool:
        match = ADD_CAPTION.match(message.caption or "")
        if not match or message.document is None:
            return False
        return match.group(1) is None or match.group(1).lower() == message.get_bot().username.lower()


MENTIONS_ME = _MentionsMe(name="MentionsMe")
REPLY_TO_ME = _ReplyToMe(name="ReplyToMe")
FROM_OTHER_BOT = _FromOtherBot(name="FromOtherBot")
ADD_DOCUMENT = _AddCaption(name="AddDocument")
