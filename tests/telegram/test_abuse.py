"""Abuse: the admin gate in every chat type and disguise, the question rate limits, and /add
file names that try to leave the corpus folder."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.format import RATE_LIMITED, REFUSED

from .conftest import Running, start_running
from .fake_api import FakeBotApi
from .test_admin import NEW_ARTICLE
from .updates import ADMIN_ID, ANONYMOUS_ADMIN_BOT, CHANNEL, GROUP, GROUP_ID, OTHER_ID, USER_ID, user

CHANNEL_BOT = 136817688  # the user Telegram puts in `from` when a channel posts in a group
SMALL_GROUP = {"id": -4242, "type": "group", "title": "Old-style group"}
FROM_ADMIN = {"type": "user", "sender_user": user(ADMIN_ID, "Admin"), "date": 1}
ADD_CAPTION = {"caption": "/add", "caption_entities": [{"type": "bot_command", "offset": 0, "length": 4}]}


def in_chat(
    chat: dict[str, Any], text: str | None, sender: dict[str, Any] | None, **extra: Any
) -> Callable[[Running], None]:
    def send(running: Running) -> None:
        running.api.push(
            "message" if chat["type"] != "channel" else "channel_post",
            running.send.message(chat, text, sender, **extra),
        )

    return send


def with_document(chat: dict[str, Any], sender: dict[str, Any] | None, **extra: Any) -> Callable[[Running], None]:
    def send(running: Running) -> None:
        document = running.api.add_file(NEW_ARTICLE.encode(), "bridge.md")
        in_chat(chat, None, sender, document=document, **ADD_CAPTION, **extra)(running)

    return send


ANONYMOUS = {"from": user(ANONYMOUS_ADMIN_BOT, "Group", is_bot=True), "sender_chat": GROUP}
AS_CHANNEL = {"from": user(CHANNEL_BOT, "Channel", is_bot=True), "sender_chat": CHANNEL}
NOT_ADMIN: dict[str, tuple[Callable[[Running], None], int | None]] = {
    "private /reindex": (in_chat({"id": USER_ID, "type": "private"}, "/reindex", user(USER_ID)), USER_ID),
    "private /stats forwarded from the admin": (
        in_chat({"id": USER_ID, "type": "private"}, "/stats", user(USER_ID), forward_origin=FROM_ADMIN),
        USER_ID,
    ),
    "group /reindex": (in_chat(SMALL_GROUP, "/reindex", user(USER_ID)), SMALL_GROUP["id"]),
    "supergroup /stats@bot": (in_chat(GROUP, "/stats@CiteTestBot", user(OTHER_ID)), GROUP_ID),
    "supergroup /reindex forwarded from the admin": (
        in_chat(GROUP, "/reindex", user(USER_ID), forward_origin=FROM_ADMIN),
        GROUP_ID,
    ),
    "supergroup /reindex by an anonymous admin": (in_chat(GROUP, "/reindex", None, **ANONYMOUS), GROUP_ID),
    "supergroup /stats posted as a channel": (in_chat(GROUP, "/stats", None, **AS_CHANNEL), GROUP_ID),
    "channel post /reindex": (in_chat(CHANNEL, "/reindex", None, sender_chat=CHANNEL), None),
    "private /add": (with_document({"id": USER_ID, "type": "private"}, user(USER_ID)), USER_ID),
    "private /add forwarded from the admin": (
        with_document({"id": USER_ID, "type": "private"}, user(USER_ID), forward_origin=FROM_ADMIN),
        USER_ID,
    ),
    "supergroup /add": (with_document(GROUP, user(USER_ID)), GROUP_ID),
    "supergroup /add by an anonymous admin": (with_document(GROUP, None, **ANONYMOUS), GROUP_ID),
}


@pytest.mark.parametrize("row", NOT_ADMIN.values(), ids=NOT_ADMIN.keys())
async def test_admin_commands_are_refused_to_everyone_else(running: Running, corpus_dir: Path, row: tuple) -> None:
    send, reply_chat = row
    index, articles = running.service.answerer.index, sorted(p.name for p in corpus_dir.iterdir())
    send(running)
    if reply_chat is None:  # channel posts never reach the admin commands
        await running.quiet()
        assert running.sent() == []
    else:
        assert (await running.reply(chat_id=reply_chat))["text"] == REFUSED
    assert running.service.answerer.index is index
    assert sorted(p.name for p in corpus_dir.iterdir()) == articles
    assert not running.api.calls_of("getFile")  # nothing was even downloaded
    assert not any("Articles:" in c.params.get("text", "") for c in running.api.calls_of("sendMessage"))


async def test_group_rate_limit_is_polite_and_per_chat(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    settings = tg_settings.model_copy(update={"chat_rate_per_minute": 3})
    async with start_running(settings, tg_service, fake_api) as running:
        for n in range(4):  # four different members of one group
            running.send.group("/ask When does the festival end?", user_id=USER_ID + n)
        replies = await running.replies(count=4, chat_id=GROUP_ID)
        assert sorted(r["text"] == RATE_LIMITED for r in replies) == [False, False, False, True]
        running.send.private("When does the festival end?", user_id=OTHER_ID)  # other chats are not limited
        assert "Sunday" in (await running.reply(chat_id=OTHER_ID))["text"]


NAMES = {
    "parent folders": ("../../../../tmp/escape.md", "escape.md"),
    "absolute path": ("/etc/cron.d/job.txt", "job.txt"),
    "windows path": ("..\\..\\Windows\\evil.md", "evil.md"),
    "right-to-left override": ("report\u202edm.txt", "report-dm.txt"),
    "full-width dots and slash": ("\uff0e\uff0e\uff0fbridge.md", "bridge.md"),
    "only dots": ("....md", None),
    "very long": ("a" * 300 + ".md", "a" * 80 + ".md"),
}


@pytest.mark.parametrize(("file_name", "expected"), NAMES.values(), ids=NAMES.keys())
async def test_add_never_writes_outside_the_corpus(
    running: Running, corpus_dir: Path, file_name: str, expected: str | None
) -> None:
    def outside() -> set[Path]:  # files of the test's folder outside the corpus (and the index, rebuilt)
        index_dir = running.settings.index_dir
        return {
            p
            for p in corpus_dir.parent.rglob("*")
            if not p.is_relative_to(corpus_dir) and not p.is_relative_to(index_dir)
        }

    before = outside()
    document = running.api.add_file(NEW_ARTICLE.encode(), file_name)
    running.send.private(None, user_id=ADMIN_ID, document=document, **ADD_CAPTION)
    report = html.unescape((await running.reply(chat_id=ADMIN_ID))["text"])
    added = sorted(p.name for p in corpus_dir.iterdir() if p.name not in ("harbour.md", "lighthouse.txt"))
    assert len(added) == 1 and (expected is None or added == [expected]), added
    assert f"Added <code>{added[0]}</code>" in report
    assert (corpus_dir / added[0]).read_text(encoding="utf-8") == NEW_ARTICLE
    assert outside() == before


async def test_add_checks_the_size_it_downloads_not_the_size_it_is_told(running: Running, corpus_dir: Path) -> None:
    document = running.api.add_file(b"Title\n\n" + b"word " * 2000, "big.md")
    document["file_size"] = 100  # the message says it is small
    running.send.private(None, user_id=ADMIN_ID, document=document, **ADD_CAPTION)
    assert "the limit is 5,000 bytes" in (await running.reply(chat_id=ADMIN_ID))["text"]
    assert not (corpus_dir / "big.md").exists()
