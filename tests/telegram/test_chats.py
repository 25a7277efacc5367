"""Groups, channels and inline mode: answer only when addressed, threaded; silence otherwise."""

from __future__ import annotations

import html

from bot.telegram.format import USAGE_ASK

from .conftest import Running
from .updates import CHANNEL_ID, GROUP_ID, OTHER_ID, USER_ID, user

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
