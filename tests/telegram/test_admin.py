"""Admin commands: /reindex, /stats and /add for ADMIN_IDS only; everyone else is refused."""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.index import BuildReport
from bot.service import QAService
from bot.settings import Settings
from bot.telegram.format import REFUSED
from tests.fakes import FakeEncoder

from .conftest import Running, start_running
from .fake_api import FakeBotApi
from .updates import ADMIN_ID, ANONYMOUS_ADMIN_BOT, GROUP, GROUP_ID, USER_ID, user

NEW_ARTICLE = """---
title: Bridge <reopens> & more
url: https://example.com/bridge
---

The Kessel bridge reopened to traffic on Monday after eighteen months of repairs.
Engineers replaced all forty steel cables of the suspension span.
"""
BRIDGE_QUESTION = "How many steel cables did the engineers replace on the bridge?"


async def ask(running: Running, question: str, user_id: int) -> str:
    before = len(running.sent())
    running.send.private(question, user_id=user_id)
    replies = await running.replies(count=before + 1)
    return replies[before]["text"]


async def test_reindex_by_admin_makes_a_new_article_answerable(running: Running, corpus_dir: Path) -> None:
    assert "forty" not in await ask(running, BRIDGE_QUESTION, USER_ID)
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    running.send.private("/reindex", user_id=ADMIN_ID)
    report = (await running.reply(chat_id=ADMIN_ID))["text"]
    assert "3 articles" in report and "Added: bridge.md" in report and "Reindexed in" in report
    answer = await ask(running, BRIDGE_QUESTION, USER_ID)
    assert "forty steel cables" in answer and "Bridge &lt;reopens&gt; &amp; more" in answer


async def test_reindex_by_anyone_else_is_refused_and_changes_nothing(running: Running, corpus_dir: Path) -> None:
    index = running.service.answerer.index
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    running.send.private("/reindex", user_id=USER_ID)
    assert (await running.reply(chat_id=USER_ID))["text"] == REFUSED
    assert running.service.answerer.index is index
    assert "forty" not in await ask(running, BRIDGE_QUESTION, USER_ID)


async def test_forwarded_admin_command_grants_nothing(running: Running) -> None:
    origin = {"type": "user", "sender_user": user(ADMIN_ID, "Admin"), "date": 1}
    running.send.private("/reindex", user_id=USER_ID, forward_origin=origin)
    assert (await running.reply(chat_id=USER_ID))["text"] == REFUSED


async def test_group_admin_commands_only_for_admin_ids(running: Running) -> None:
    index = running.service.answerer.index
    running.send.group("/reindex", user_id=USER_ID)  # a chat admin, but not in ADMIN_IDS
    running.send.group(
        "/stats@CiteTestBot",
        user_id=ANONYMOUS_ADMIN_BOT,
        sender_chat=GROUP,
        **{"from": user(ANONYMOUS_ADMIN_BOT, "Group", is_bot=True)},
    )
    replies = await running.replies(count=2, chat_id=GROUP_ID)
    assert [r["text"] for r in replies] == [REFUSED, REFUSED]
    assert all("reply_parameters" in r for r in replies)
    assert running.service.answerer.index is index
    running.send.group("/stats", user_id=ADMIN_ID)
    assert "Articles: 2" in (await running.replies(count=3, chat_id=GROUP_ID))[2]["text"]


async def test_stats_for_admin(running: Running) -> None:
    await ask(running, "When does the festival end?", USER_ID)
    running.send.private("/stats", user_id=ADMIN_ID)
    text = (await running.reply(chat_id=ADMIN_ID))["text"]
    assert "Articles: 2" in text and "Sentences: " in text and "Uptime: " in text
    assert "Questions answered: 1" in text
    running.send.private("/stats", user_id=USER_ID)
    assert await running.reply(chat_id=USER_ID, text=REFUSED)


def document_message(running: Running, content: bytes, file_name: str, user_id: int, caption: str = "/add") -> None:
    document = running.api.add_file(content, file_name)
    running.send.private(
        None,
        user_id=user_id,
        document=document,
        caption=caption,
        caption_entities=[{"type": "bot_command", "offset": 0, "length": 4}],
    )


async def test_add_by_admin_writes_the_article_and_reindexes(running: Running, corpus_dir: Path) -> None:
    document_message(running, NEW_ARTICLE.encode(), "../../etc/Brücke news?.md", ADMIN_ID)
    report = (await running.reply(chat_id=ADMIN_ID))["text"]
    assert "Added <code>Brucke-news.md</code>" in report and "3 articles" in report
    assert (corpus_dir / "Brucke-news.md").read_text(encoding="utf-8") == NEW_ARTICLE
    assert sorted(p.name for p in corpus_dir.parent.rglob("*.md") if p.parent != corpus_dir) == []
    assert not list(corpus_dir.glob(".upload-*"))
    assert running.api.calls_of("getFile")
    assert "forty steel cables" in await ask(running, BRIDGE_QUESTION, USER_ID)


async def test_add_replacing_an_article_says_so(running: Running, corpus_dir: Path) -> None:
    document_message(running, NEW_ARTICLE.encode(), "lighthouse.txt", ADMIN_ID)
    report = html.unescape((await running.reply(chat_id=ADMIN_ID))["text"])
    assert "Replaced <code>lighthouse.txt</code>" in report and "Changed: lighthouse.txt" in report


async def test_add_by_anyone_else_is_refused(running: Running, corpus_dir: Path) -> None:
    before = sorted(p.name for p in corpus_dir.iterdir())
    document_message(running, NEW_ARTICLE.encode(), "bridge.md", USER_ID)
    assert (await running.reply(chat_id=USER_ID))["text"] == REFUSED
    assert sorted(p.name for p in corpus_dir.iterdir()) == before
    assert not running.api.calls_of("getFile")


@pytest.mark.parametrize(
    ("content", "file_name", "expected"),
    [
        (NEW_ARTICLE.encode(), "bridge.pdf", "Only .txt and .md files"),
        (b"x" * 6000, "big.txt", "the limit is 5,000 bytes"),
        ("Titel\n\nÜberall Brücken.".encode("latin-1"), "latin.txt", "not UTF-8"),
        (b"", "empty.md", "empty"),
    ],
)
async def test_add_refuses_bad_files(
    running: Running, corpus_dir: Path, content: bytes, file_name: str, expected: str
) -> None:
    before = sorted(p.name for p in corpus_dir.iterdir())
    document_message(running, content, file_name, ADMIN_ID)
    assert expected in (await running.reply(chat_id=ADMIN_ID))["text"]
    assert sorted(p.name for p in corpus_dir.iterdir()) == before


class SlowReindexService(QAService):
    """A QAService whose rebuild takes a while, to ask questions meanwhile."""

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        time.sleep(1.0)
        return super().reindex(progress)


def slow_service_with_new_article(settings: Settings, corpus_dir: Path) -> SlowReindexService:
    """An opened SlowReindexService whose corpus has since gained bridge.md (a reindex adds it)."""
    service = SlowReindexService(settings, encoder_factory=FakeEncoder)
    service.open()
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    return service


async def test_questions_are_answered_from_the_old_index_during_a_reindex(
    tg_settings: Settings, fake_api: FakeBotApi, corpus_dir: Path
) -> None:
    service = slow_service_with_new_article(tg_settings, corpus_dir)
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private("/reindex", user_id=ADMIN_ID)
        await running.reply("sendChatAction", chat_id=ADMIN_ID)
        running.send.private("/reindex", user_id=ADMIN_ID)
        running.send.private("When does the festival end?", user_id=USER_ID)
        answer = await running.reply(chat_id=USER_ID)
        assert "Sunday" in answer["text"]
        assert "already running" in (await running.reply(chat_id=ADMIN_ID))["text"]
        report = (await running.replies(count=2, chat_id=ADMIN_ID))[1]
        assert "Added: bridge.md" in report["text"]
        order = [c.params["text"] for c in running.api.calls_of("sendMessage")]
        assert order.index(answer["text"]) < order.index(report["text"])  # not held up by the rebuild
