"""Issue 12: hostile Bot API answers, Telegram's documented 400s, fair floods, bounded resends."""

from __future__ import annotations

import asyncio
import html
import time
from pathlib import Path

import pytest
from telegram.error import TelegramError

from bot.answer import Answer, Answerer, Citation, clean_question
from bot.service import QAService
from bot.settings import Settings
from bot.telegram.format import RATE_LIMITED, inline_result, pieces
from tests.fakes import FakeEncoder

from .conftest import TOKEN, Running, start_running
from .fake_api import ApiError, ChatLimit, FakeBotApi, Fault, check_html
from .test_admin import NEW_ARTICLE, document_message
from .updates import ADMIN_ID, ANONYMOUS_ADMIN_BOT, GROUP, GROUP_ID, OTHER_ID, USER_ID, user

QUESTION = "How many visitors are expected at the festival?"


class SlowService(QAService):
    """Answers after `delay` seconds (a big index on a slow machine)."""

    delay = 1.2

    @property
    def answerer(self) -> Answerer:
        time.sleep(self.delay)
        return QAService.answerer.fget(self)  # type: ignore[attr-defined]


# --- typing only when an answer takes a while ---------------------------------------------------


async def test_typing_is_shown_only_while_a_slow_answer_is_worked_out(
    tg_settings: Settings, fake_api: FakeBotApi
) -> None:
    service = SlowService(tg_settings, encoder_factory=FakeEncoder)
    SlowService.delay, delay = 0.0, SlowService.delay
    service.open()
    SlowService.delay = delay
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private(QUESTION)
        reply = await running.reply(chat_id=USER_ID)
    assert "40,000" in reply["text"]
    [typing] = fake_api.calls_of("sendChatAction")
    assert typing.params == {"chat_id": USER_ID, "action": "typing"}
    assert typing.at < fake_api.calls_of("sendMessage")[0].at


# --- Telegram's documented 400s -----------------------------------------------------------------


async def test_a_group_upgraded_to_a_supergroup_gets_its_answer_in_the_new_chat(running: Running) -> None:
    old, new = {"id": -4001, "type": "group", "title": "Old group"}, -1004001
    real = running.api.handlers["sendMessage"]

    def migrated(params: dict) -> dict:
        if int(params["chat_id"]) == old["id"]:
            raise ApiError(
                400, "Bad Request: group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": new}
            )
        return real(params)

    running.api.handlers["sendMessage"] = migrated
    running.send.api.push("message", running.send.message(old, f"/ask {QUESTION}", user(USER_ID)))
    first = await running.reply(chat_id=new)
    assert "40,000" in first["text"]
    running.send.api.push("message", running.send.message(old, "/ask When does the festival end?", user(OTHER_ID)))
    second = await running.replies(chat_id=new, count=2)
    assert "Sunday" in second[1]["text"]
    assert len([c for c in running.api.calls_of("sendMessage") if c.params["chat_id"] == old["id"]]) == 1  # remembered


async def test_a_reply_to_a_deleted_topic_is_sent_to_the_group_itself(running: Running) -> None:
    forum = dict(GROUP, is_forum=True)
    running.api.fail_next("sendMessage", Fault(400, "Bad Request: message thread not found"))
    running.send.api.push(
        "message",
        running.send.message(forum, f"/ask {QUESTION}", user(USER_ID), message_thread_id=77, is_topic_message=True),
    )
    replies = await running.replies(chat_id=GROUP_ID, count=2, failed_too=True)
    assert replies[0]["message_thread_id"] == 77
    assert "message_thread_id" not in replies[1] and "40,000" in replies[1]["text"]


async def test_every_button_press_is_answered_even_one_the_bot_does_not_know(running: Running) -> None:
    message = running.send.private("hello")
    query_id = running.send.callback(message, "something-else")
    assert await running.reply("answerCallbackQuery", callback_query_id=query_id)
    assert not running.sent()[1:]


# --- files only over HTTP; no secret in any reply ----------------------------------------------


@pytest.mark.parametrize("where", ["absolute", "dotdot", "environ"])
async def test_a_hostile_file_path_never_reads_the_bots_own_disk(
    running: Running, corpus_dir: Path, tmp_path: Path, where: str
) -> None:
    secret_file = tmp_path / "outside.md"
    secret_file.write_text(f"Private notes {TOKEN}\n\nNot for the corpus: {TOKEN}.\n", encoding="utf-8")
    path = {
        "absolute": str(secret_file),
        "dotdot": "../" * 12 + str(secret_file).lstrip("/"),
        "environ": "/proc/self/environ",
    }[where]
    running.api.handlers["getFile"] = lambda p: {"file_id": p["file_id"], "file_unique_id": "u", "file_path": path}
    before = sorted(p.name for p in corpus_dir.iterdir())
    document_message(running, NEW_ARTICLE.encode(), "notes.md", ADMIN_ID)
    reply = (await running.reply(chat_id=ADMIN_ID))["text"]
    assert "unusable place to download" in reply
    assert TOKEN.split(":")[1] not in reply and "Private notes" not in reply
    assert sorted(p.name for p in corpus_dir.iterdir()) == before


async def test_utf16_without_bom_is_refused(running: Running, corpus_dir: Path) -> None:
    before = sorted(p.name for p in corpus_dir.iterdir())
    document_message(running, NEW_ARTICLE.encode("utf-16-le"), "wide.txt", ADMIN_ID)
    assert "not UTF-8" in (await running.reply(chat_id=ADMIN_ID))["text"]
    assert sorted(p.name for p in corpus_dir.iterdir()) == before


async def test_a_refused_upload_quotes_at_most_a_short_clean_title(running: Running) -> None:
    title = "Env " + "\x01".join(f"KEY{n}=value{n}" for n in range(40))
    document_message(running, f"{title}\n".encode(), "env.txt", ADMIN_ID)
    reply = (await running.reply(chat_id=ADMIN_ID))["text"]
    assert "no article text" in reply and "KEY1=value1" in reply
    assert "KEY30" not in reply and "\x01" not in reply


# --- questions and long answers ----------------------------------------------------------------


async def test_soft_hyphens_and_zero_width_spaces_inside_words_do_not_hide_the_answer(running: Running) -> None:
    running.send.private("How many visi\u00adtors are ex\u200bpected at the fes\u00adtival?")
    assert "40,000" in (await running.reply(chat_id=USER_ID))["text"]
    assert clean_question("visi\u00adtors\u200b fes\u200btival") == "visitors festival?"  # read with its "?"


def test_a_sentence_over_4096_characters_is_cut_outside_its_blockquote() -> None:
    sentence = "The festival & its <ships> went on " + "and on " * 800 + "until Sunday."
    citation = Citation(1, "harbour.md", "Harbour festival opens", sentence, 1, 1, 0.9, "https://example.com/h", 3)
    answer = Answer("When?", True, sentence, (citation,), 0.9)
    text = inline_result(answer).input_message_content.message_text
    assert len(check_html(text)) <= 4096  # the Bot API accepts it: tags balanced, within the limit
    parts = pieces(f"<blockquote>{html.escape(sentence)}</blockquote>\n[1] Harbour")
    assert len(parts) == 2
    assert all(p.startswith("<blockquote>") and p.count("<blockquote>") == p.count("</blockquote>") for p in parts[:2])
    assert all(len(p) <= 4096 and check_html(p) for p in parts)


# --- start-up and resends -------------------------------------------------------------------------


async def test_a_garbled_getme_answer_is_one_clear_error(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    fake_api.handlers["getMe"] = lambda p: {"hello": "world"}
    with pytest.raises(TelegramError) as failure:
        async with start_running(tg_settings, tg_service, fake_api):
            pass
    assert "getMe" in str(failure.value) and "\n" not in str(failure.value)


async def test_a_send_that_times_out_is_resent_once_at_most(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    settings = tg_settings.model_copy(update={"telegram_timeout": 1.0, "telegram_retries": 4})
    async with start_running(settings, tg_service, fake_api) as running:
        fake_api.fail_next("sendMessage", Fault.hang(1.5), times=3)
        running.send.private(QUESTION)
        await running.replies(count=2, failed_too=True, chat_id=USER_ID)
        await running.feed.drained()
        assert len(fake_api.calls_of("sendMessage")) == 2
        running.send.private("When does the festival end?")
        assert "Sunday" in (await running.reply(chat_id=USER_ID))["text"]


# --- fair floods -----------------------------------------------------------------------------------


async def test_anonymous_admins_are_limited_per_group(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    settings = tg_settings.model_copy(update={"user_rate_per_minute": 2})
    other_group = dict(GROUP, id=GROUP_ID - 1, title="Other")
    async with start_running(settings, tg_service, fake_api) as running:
        for chat in (GROUP, GROUP, GROUP, other_group):
            running.send.api.push(
                "message",
                running.send.message(chat, f"/ask {QUESTION}", user(ANONYMOUS_ADMIN_BOT, "Group"), sender_chat=chat),
            )
        first = await running.replies(chat_id=GROUP_ID, count=3)
        assert sorted(RATE_LIMITED in r["text"] for r in first) == [False, False, True]
        assert "40,000" in (await running.reply(chat_id=other_group["id"]))["text"]


async def test_a_flood_gets_one_notice_and_holds_back_nobody_else(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    """Telegram-like per-chat limits; one user floods while others ask now and then."""
    fake_api.chat_limit = ChatLimit(burst=3, per_second=1.0, retry_after=5)
    flooder, others = 9000, [OTHER_ID + n for n in range(5)]
    async with start_running(tg_settings, tg_service, fake_api) as running:
        for round_ in range(2):
            for n in range(150):
                running.send.private(f"{QUESTION} ({round_}, {n})", user_id=flooder)
            for other in others:
                running.send.private("When does the festival end?", user_id=other)
            await asyncio.sleep(1.0)
        for other in others:
            assert len(await running.replies(chat_id=other, count=2)) == 2
        to_flooder = await asyncio.to_thread(  # ~1 a second in the flooder's chat
            fake_api.wait_for, "sendMessage", lambda c: c.error is None and c.params["chat_id"] == flooder, 30.0, 11
        )
        await running.feed.drained()
    sent = fake_api.calls_of("sendMessage")
    notices = [c for c in sent if c.params["chat_id"] == flooder and c.params["text"] == RATE_LIMITED]
    assert 1 <= len(notices) <= 5, f"{len(notices)} notices"
    assert len(to_flooder) >= 11
    assert not [c for c in sent if c.error is not None and c.params["chat_id"] in others]  # no 429 for others
    assert running.app.bot_data.core.limits.dropped >= 250


async def test_no_reply_carries_the_bot_token_even_when_an_article_does(
    tg_settings: Settings, fake_api: FakeBotApi
) -> None:
    (tg_settings.corpus_dir / "leak.txt").write_text(
        f"Gate notes\n\nThe harbour gate code is {TOKEN} since the spring.\n", encoding="utf-8"
    )
    service = QAService(tg_settings, encoder_factory=FakeEncoder)
    service.open()
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private("What is the harbour gate code?")
        reply = (await running.reply(chat_id=USER_ID))["text"]
    assert "harbour gate code is" in reply and "[REDACTED]" in reply
    assert TOKEN.split(":")[1] not in reply


async def test_typing_never_takes_an_answers_place_in_a_busy_groups_budget(
    tg_settings: Settings, fake_api: FakeBotApi
) -> None:
    """12 slow questions at once in a group whose budget is 20 messages: all 12 answers fit in it."""
    fake_api.chat_limit = ChatLimit(burst=20, per_second=20 / 60, retry_after=5)
    settings = tg_settings.model_copy(update={"user_rate_per_minute": 100, "chat_rate_per_minute": 100})
    service = SlowService(settings, encoder_factory=FakeEncoder)
    SlowService.delay, delay = 0.0, SlowService.delay
    service.open()
    SlowService.delay = delay
    async with start_running(settings, service, fake_api) as running:
        for n in range(12):
            running.send.group(f"/ask {QUESTION}", user_id=USER_ID + n)
            await asyncio.sleep(0.06)  # a busy group, not one burst
        await running.replies(chat_id=GROUP_ID, count=12)
        await running.feed.drained()
    typing = fake_api.calls_of("sendChatAction")
    assert typing, "a slow answer shows typing while the budget allows"
    assert len(typing) + 12 <= 20  # every answer had its place in the group's budget
    assert not [c for c in fake_api.calls_of("sendMessage") if c.error is not None]
