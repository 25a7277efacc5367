"""Telegram update payloads as the Bot API sends them (entities with UTF-16 offsets)."""

from __future__ import annotations

import re
import time
from typing import Any

from .fake_api import FakeBotApi

ADMIN_ID = 111
USER_ID = 222
OTHER_ID = 333
GROUP_ID = -1001234
CHANNEL_ID = -1005678
ANONYMOUS_ADMIN_BOT = 1087968824  # GroupAnonymousBot


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def entities(text: str) -> list[dict[str, Any]]:
    """bot_command at the start and @mentions, as Telegram marks them."""
    found = []
    command = re.match(r"/\w+(?:@\w+)?", text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for match in re.finditer(r"(?<![\w@])@\w{5,32}", text):
        found.append(
            {"type": "mention", "offset": utf16_len(text[: match.start()]), "length": utf16_len(match.group())}
        )
    return found


def user(user_id: int, first_name: str = "Ann", is_bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "is_bot": is_bot, "first_name": first_name}


def private_chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": "Ann"}


GROUP = {"id": GROUP_ID, "type": "supergroup", "title": "News <fans> & co"}
CHANNEL = {"id": CHANNEL_ID, "type": "channel", "title": "Daily news"}


class Sender:
    """Pushes updates to the fake server as users, groups and channels would produce them."""

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api
        self._ids = 1

    def message(
        self, chat: dict[str, Any], text: str | None, sender: dict[str, Any] | None, **extra: Any
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": self.api.next_message_id(), "date": int(time.time()), "chat": chat}
        if sender is not None:
            message["from"] = sender
        if text is not None:
            message["text"] = text
            if entities(text):
                message["entities"] = entities(text)
        message.update(extra)
        return message

    def private(self, text: str | None, user_id: int = USER_ID, **extra: Any) -> dict[str, Any]:
        message = self.message(private_chat(user_id), text, user(user_id), **extra)
        self.api.push("message", message)
        return message

    def group(self, text: str | None, user_id: int = USER_ID, *, kind: str = "message", **extra: Any) -> dict[str, Any]:
        message = self.message(GROUP, text, user(user_id), **extra)
        self.api.push(kind, message)
        return message

    def channel(self, text: str, *, kind: str = "channel_post") -> dict[str, Any]:
        message = self.message(CHANNEL, text, None, sender_chat=CHANNEL)
        self.api.push(kind, message)
        return message

    def inline(self, query: str, user_id: int = USER_ID) -> str:
        query_id = f"iq-{self._next()}"
        self.api.push("inline_query", {"id": query_id, "from": user(user_id), "query": query, "offset": ""})
        return query_id

    def callback(self, message: dict[str, Any], data: str, user_id: int = USER_ID) -> str:
        query_id = f"cq-{self._next()}"
        self.api.push(
            "callback_query",
            {
                "id": query_id,
                "from": user(user_id),
                "message": message,
                "chat_instance": "ci",
                "data": data,
            },
        )
        return query_id

    def _next(self) -> int:
        self._ids += 1
        return self._ids


# A sticker message's payload (a message that is not text)
STICKER = {
    "file_id": "s1",
    "file_unique_id": "s1",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
