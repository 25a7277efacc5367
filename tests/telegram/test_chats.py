"""Groups, channels and inline mode: answer only when addressed, threaded; silence otherwise."""

from __future__ import annotations

import asyncio
import html
import json
import urllib.error
import urllib.request

from pydantic import SecretStr

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.format import USAGE_ASK
from tests.fakes import FakeEncoder

from .conftest import Running, start_running
from .fake_api import FakeBotApi
from .updates import CHANNEL_ID, GROUP_ID, OTHER_ID, USER_ID, Sender, private_chat, user

QUESTION = "How many visitors are expected at the festival?"


def threaded_to(message: dict) -> dict:
    return {"message_id": message["message_id"], "allow_sending_without_reply": True}


def thread(reply: dict) -> dict:
    """A reply's reply_parameters without what Defaults adds (quote_parse_mode)."""
    return {k: v for k, v in reply.get("reply_parameters", {}).items() if k != "quote_parse_mode"}


async def test_group_ask_is_answered_threaded(running: Running) -> None:
    question = running.send.group(f"/ask {QUESTION}")
    reply = await running.reply(chat_id=GROUP_ID)
    assert "40,000" in reply["text"]
    assert thread(reply) == threaded_to(question)
    await running.quiet()
    assert len(running.sent()) == 1


async def test_group_ask_addressed_to_this_bot(running: Running) -> None:
    question = running.send.group(f"/ask@CiteTestBot {QUESTION}")
    assert thread(await running.reply(chat_id=GROUP_ID)) == threaded_to(question)


async def test_group_mention_is_answered_without_the_mention(running: Running) -> None:
    question = running.send.group(f"@citetestbot {QUESTION}")
    reply = await running.reply(chat_id=GROUP_ID)
    assert "40,000" in reply["text"] and thread(reply) == threaded_to(question)


async def test_group_reply_to_the_bot_is_answered(running: Running) -> None:
    running.send.group("/ask When does the festival end?")
    await running.reply(chat_id=GROUP_ID)
    bot_message = running.api.calls_of("sendMessage")[0].result
    question = running.send.group(QUESTION, reply_to_message=bot_message)
    replies = await running.replies(count=2, chat_id=GROUP_ID)
    assert "40,000" in replies[1]["text"] and thread(replies[1]) == threaded_to(question)


async def test_group_stays_silent_unless_addressed(running: Running) -> None:
    running.send.group(QUESTION)  # plain chatter, even a question
    running.send.group(f"@someoneelse {QUESTION}")  # mentions another user
    running.send.group(f"/ask@OtherBot {QUESTION}")  # a command for another bot
    other = running.send.group("I think it's 40,000", user_id=OTHER_ID)
    running.send.group(QUESTION, reply_to_message=other)  # a reply to someone else
    running.send.group(None, photo=[{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}])
    running.send.group("/frobnicate")  # unknown command
    running.send.group(f"/ask {QUESTION}", user_id=OTHER_ID, **{"from": user(OTHER_ID, "Helper", is_bot=True)})
    await running.quiet(0.6)
    assert running.sent() == [] and running.api.calls_of("sendChatAction") == []


async def test_group_edited_question_is_not_answered_again(running: Running) -> None:
    question = running.send.group(f"/ask {QUESTION}")
    await running.reply(chat_id=GROUP_ID)
    running.api.push("edited_message", dict(question, text=f"/ask {QUESTION} (edited)", edit_date=question["date"] + 5))
    await running.quiet()
    assert len(running.sent()) == 1


async def test_group_ask_without_question_gets_usage(running: Running) -> None:
    question = running.send.group("/ask")
    reply = await running.reply(chat_id=GROUP_ID)
    assert reply["text"] == USAGE_ASK and thread(reply) == threaded_to(question)


async def test_channel_ask_post_is_answered_as_a_reply(running: Running) -> None:
    post = running.send.channel(f"/ask {QUESTION}")
    reply = await running.reply(chat_id=CHANNEL_ID)
    assert "40,000" in reply["text"] and thread(reply) == threaded_to(post)


async def test_channel_mention_post_is_answered(running: Running) -> None:
    post = running.send.channel(f"@CiteTestBot, {QUESTION}")
    reply = await running.reply(chat_id=CHANNEL_ID)
    assert "40,000" in reply["text"] and thread(reply) == threaded_to(post)


async def test_channel_other_posts_and_edits_are_left_alone(running: Running) -> None:
    running.send.channel("Our weekly news round-up is out.")
    running.send.channel(f"/ask {QUESTION}", kind="edited_channel_post")
    await running.quiet()
    assert running.sent() == []


async def test_inline_query_offers_the_cited_answer(running: Running) -> None:
    running.send.inline(QUESTION)
    params = await running.reply("answerInlineQuery")
    [result] = params["results"]
    assert result["type"] == "article" and "40,000" in result["title"]
    content = result["input_message_content"]
    assert "<blockquote>[1] About 40,000" in content["message_text"] and content["parse_mode"] == "HTML"
    assert "Harbour festival opens" in content["message_text"]


async def test_inline_query_without_words_offers_nothing(running: Running) -> None:
    running.send.inline("")
    params = await running.reply("answerInlineQuery")
    assert params["results"] == []


async def test_sources_button_shows_the_passage(running: Running) -> None:
    running.send.private(QUESTION)
    await running.reply(chat_id=USER_ID)
    answer = running.api.calls_of("sendMessage")[0]
    button = answer.params["reply_markup"]["inline_keyboard"][0][0]
    query_id = running.send.callback(answer.result, button["callback_data"])
    await running.reply("answerCallbackQuery", callback_query_id=query_id)
    passage = (await running.replies(count=2, chat_id=USER_ID))[1]
    assert "<b>About 40,000 visitors are expected over three days.</b>" in passage["text"]
    assert "Mayor Anna Berg cut the ribbon" in passage["text"]
    assert thread(passage) == threaded_to(answer.result)


async def test_stale_sources_button_is_answered_with_an_alert(running: Running) -> None:
    running.send.private(QUESTION)
    await running.reply(chat_id=USER_ID)
    answer = running.api.calls_of("sendMessage")[0].result
    query_id = running.send.callback(answer, "src:1:0123456789ab")
    params = await running.reply("answerCallbackQuery", callback_query_id=query_id)
    assert params["show_alert"] is True and "no longer" in html.unescape(params["text"])
    await running.quiet()
    assert len(running.sent()) == 1


async def test_webhook_mode_answers_posted_updates(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    """WEBHOOK_URL mode: setWebhook with the secret; posted updates are stored, then 200, then answered."""
    settings = tg_settings.model_copy(
        update={
            "webhook_url": "https://bot.example.com/hook/x1",
            "webhook_port": 0,  # the server picks a free port
            "webhook_secret": SecretStr("hook-secret-123"),
        }
    )
    sender = Sender(fake_api)

    def post(port: int, update: object, secret: str) -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/hook/x1",
            json.dumps(update).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    async with start_running(settings, tg_service, fake_api) as running:
        port = running.feed.port
        hook = (await asyncio.to_thread(fake_api.wait_for, "setWebhook"))[0].params
        assert hook["url"] == settings.webhook_url and hook["secret_token"] == "hook-secret-123"
        assert "channel_post" in hook["allowed_updates"] and "callback_query" in hook["allowed_updates"]
        message = sender.message(private_chat(USER_ID), QUESTION, user(USER_ID))
        assert await asyncio.to_thread(post, port, {"update_id": 1, "message": message}, "wrong") == 403
        assert await asyncio.to_thread(post, port, ["not", "an", "update"], "hook-secret-123") == 400
        assert await asyncio.to_thread(post, port, {"update_id": 2, "message": message}, "hook-secret-123") == 200
        assert sum(running.app.bot.inbox.counts().values()) == 1  # stored before the 200 came back
        [reply] = await asyncio.to_thread(fake_api.wait_for, "sendMessage")
        assert "40,000" in reply.params["text"] and reply.params["chat_id"] == USER_ID
        await running.feed.drained()
        assert not running.app.bot.inbox.pending()
        assert not fake_api.calls_of("getUpdates")


async def test_long_help_is_split_into_valid_messages(tg_settings: Settings, fake_api: FakeBotApi) -> None:
    """A reply over 4,096 characters arrives as several valid HTML messages, only the first threaded."""
    for n in range(35):
        title = f"Report {n:02d} on harbour & market <prices> " + "with a very long headline " * 6
        (tg_settings.corpus_dir / f"r{n:02d}.txt").write_text(f"{title}\n\nGrain prices rose {n} percent.\n")
    service = QAService(tg_settings, encoder_factory=FakeEncoder)
    service.open()
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.group("/help")
        parts = await running.replies(count=2, chat_id=GROUP_ID)
        await running.quiet(0.2)
        assert len(running.sent()) == 2  # the fake server accepted both as Telegram HTML
        assert all(len(p["text"]) <= 4096 for p in parts)
        assert "reply_parameters" in parts[0] and "reply_parameters" not in parts[1]
        assert "Report 00 on harbour &amp; market &lt;prices&gt;" in parts[0]["text"]
        assert "and 7 more" in parts[1]["text"]
