"""Private chats: questions, /start and /help, bad input, non-text messages, the command menu."""

from __future__ import annotations

import html
import logging

import pytest

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.format import RATE_LIMITED, TEXT_ONLY, UNKNOWN_COMMAND

from .conftest import TOKEN, Running, start_running
from .fake_api import FakeBotApi, Fault
from .updates import OTHER_ID, STICKER, USER_ID, user


async def test_question_gets_one_cited_answer(running: Running) -> None:
    running.send.private("How many visitors are expected at the festival?")
    reply = await running.reply(chat_id=USER_ID)
    assert "40,000" in reply["text"]
    assert reply["parse_mode"] == "HTML"
    assert reply["text"].index("<blockquote>") < reply["text"].index("Harbour festival opens")
    assert '<a href="https://example.com/harbour">' in reply["text"]
    assert "reply_parameters" not in reply  # private: no need to quote the question
    buttons = reply["reply_markup"]["inline_keyboard"][0]
    assert buttons and buttons[0]["callback_data"].startswith("src:")
    await running.quiet()
    assert len(running.sent()) == 1
    assert not running.api.calls_of("sendChatAction")  # ready at once: no "typing…" first
    assert not running.api.calls_of("editMessageText")  # one message, not a placeholder edited


async def test_article_text_is_escaped(running: Running) -> None:
    running.send.private("When was the lamp of the lighthouse relit?")
    reply = await running.reply(chat_id=USER_ID)
    assert "evening &amp; the keeper&#x27;s cottage" in reply["text"]  # the fake server parsed it as HTML


async def test_unanswerable_question_says_the_articles_dont_say(running: Running) -> None:
    running.send.private("What is the capital of Mongolia?")
    reply = await running.reply(chat_id=USER_ID)
    assert "don't say" in html.unescape(reply["text"])
    assert "reply_markup" not in reply


async def test_start_and_help_explain_and_list_articles(running: Running) -> None:
    running.send.private("/start")
    running.send.private("/help")
    replies = await running.replies(count=2, chat_id=USER_ID)
    for reply in replies:
        assert "@CiteTestBot" in reply["text"]
        assert "Harbour festival opens" in reply["text"] and "Lighthouse restored" in reply["text"]
        assert "/ask" in reply["text"]


async def test_command_menu_lists_the_public_commands(running: Running) -> None:
    params = await running.reply("setMyCommands")
    assert sorted(c["command"] for c in params["commands"]) == ["ask", "help", "start"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("   ", "Please send a question in words"),
        ("\U0001f600\U0001f600\U0001f600", "questions written in words"),
        ("why " * 300, "keep it under 1000 characters"),
    ],
)
async def test_bad_questions_get_the_polite_message(running: Running, text: str, expected: str) -> None:
    running.send.private(text)
    reply = await running.reply(chat_id=USER_ID)
    assert expected in reply["text"]
    assert not running.api.calls_of("sendChatAction")


async def test_sticker_gets_a_text_please(running: Running) -> None:
    running.send.private(None, sticker=STICKER)
    assert (await running.reply(chat_id=USER_ID))["text"] == TEXT_ONLY


async def test_unknown_command_points_to_help(running: Running) -> None:
    running.send.private("/frobnicate now")
    assert (await running.reply(chat_id=USER_ID))["text"] == UNKNOWN_COMMAND


async def test_messages_from_bots_and_edits_are_ignored(running: Running) -> None:
    message = {
        "message_id": 5,
        "date": 1,
        "chat": {"id": USER_ID, "type": "private"},
        "from": user(USER_ID),
        "text": "How many visitors are expected?",
        "edit_date": 2,
    }
    running.api.push("edited_message", message)
    running.send.private(
        "How many visitors are expected?", user_id=OTHER_ID, **{"from": user(OTHER_ID, "Other", is_bot=True)}
    )
    await running.quiet()
    assert running.sent() == []


async def test_unparsable_html_is_resent_as_plain_text(running: Running) -> None:
    running.api.fail_next("sendMessage", Fault(400, "Bad Request: can't parse entities: Unsupported start tag"))
    running.send.private("How many visitors are expected at the festival?")
    calls = await running.replies(count=2, failed_too=True, chat_id=USER_ID)
    plain = calls[1]
    assert "parse_mode" not in plain
    assert "40,000" in plain["text"] and "<blockquote>" not in plain["text"]
    assert "https://example.com/harbour" in plain["text"]


async def test_blocked_by_the_user_is_logged_not_crashed(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    running.api.fail_next("sendMessage", Fault(403, "Forbidden: bot was blocked by the user"))
    running.send.private("How many visitors are expected at the festival?")
    await running.replies(chat_id=USER_ID, failed_too=True)
    await running.quiet(0.2)
    assert any("blocked" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot"))
    running.send.private("When does the festival end?")  # still serving
    assert "Sunday" in (await running.reply(chat_id=USER_ID))["text"]


async def test_flood_limit_429_is_retried(running: Running) -> None:
    running.api.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 1", {"retry_after": 1}))
    running.send.private("How many visitors are expected at the festival?")
    calls = await running.replies(count=2, failed_too=True, chat_id=USER_ID)
    assert calls[0]["text"] == calls[1]["text"]


async def test_per_user_rate_limit(tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi) -> None:
    settings = tg_settings.model_copy(update={"user_rate_per_minute": 2})
    async with start_running(settings, tg_service, fake_api) as running:
        for _ in range(3):
            running.send.private("When does the festival end?")
        replies = await running.replies(count=3, chat_id=USER_ID)
        assert sorted(r["text"] == RATE_LIMITED for r in replies) == [False, False, True]
        running.send.private("When does the festival end?", user_id=OTHER_ID)  # others are not limited
        assert "Sunday" in (await running.reply(chat_id=OTHER_ID))["text"]


async def test_token_never_reaches_the_captured_logs(running: Running, caplog: pytest.LogCaptureFixture) -> None:
    logging.getLogger("httpx").setLevel(logging.DEBUG)
    try:
        running.send.private("When does the festival end?")
        await running.reply(chat_id=USER_ID)
    finally:
        logging.getLogger("httpx").setLevel(logging.NOTSET)
    http_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert http_lines and all(TOKEN not in line and "[REDACTED]" in line for line in http_lines)
