"""Bad input: each odd message gets a clear reply or a deliberate silence, and the bot keeps serving.

One row per kind of input: what is sent (private chat unless it says group), and what must come
back: a reply containing a phrase, or nothing at all. After every row a normal question is still
answered, and nothing was logged as an error.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.telegram.format import REFUSED, TEXT_ONLY, UNKNOWN_COMMAND, USAGE_ASK

from .conftest import Running
from .updates import ADMIN_ID, GROUP, GROUP_ID, STICKER, USER_ID, Sender, private_chat, user

PHOTO = [{"file_id": "p1", "file_unique_id": "p1", "width": 90, "height": 90}]
VOICE = {"file_id": "v1", "file_unique_id": "v1", "duration": 3, "mime_type": "audio/ogg"}
DOCUMENT = {
    "file_id": "d1",
    "file_unique_id": "d1",
    "file_name": "notes.txt",
    "mime_type": "text/plain",
    "file_size": 20,
}
DECLINED = "don't say"  # the answer to a question the articles do not answer
ANSWER_OR_DECLINE = ("Sunday", DECLINED)  # markup around the words may cost the match, never the reply


@dataclass(frozen=True)
class Row:
    send: Callable[[Sender], Any]
    expect: str | tuple[str, ...] | None  # a phrase of the reply (HTML unescaped; any of several), or None: no reply
    chat_id: int = USER_ID


def private(text: str | None, **extra: Any) -> Callable[[Sender], Any]:
    return lambda s: s.private(text, **extra)


def group(text: str | None, **extra: Any) -> Callable[[Sender], Any]:
    return lambda s: s.group(text, **extra)


def raw(update: dict[str, Any]) -> Callable[[Sender], Any]:
    """An update pushed as is (odd or missing fields)."""

    def push(s: Sender) -> None:
        kind, payload = next((k, v) for k, v in update.items())
        s.api.push(kind, payload)

    return push


def bare_message(**fields: Any) -> dict[str, Any]:
    return {"message_id": 9001, "date": 1, **fields}


ROWS: dict[str, Row] = {
    "empty text": Row(private(""), TEXT_ONLY),
    "white space": Row(private(" \n\t \u3000 "), "Please send a question in words"),
    "only emoji": Row(private("\U0001f600\U0001f389\U0001f44d"), "questions written in words"),
    "zero-width characters only": Row(private("\u200b\u200c\u2060"), "Please send a question in words"),
    "4,096 characters": Row(private(("When does the festival end? " * 147)[:4096]), "under 1000 characters"),
    "control characters": Row(private("When\x00 does the\x07 festival\x1b[31m end?\r\n"), "Sunday"),
    "right-to-left override": Row(private("\u202eWhen does the festival end?\u202c"), "Sunday"),
    "right-to-left script": Row(private("متى ينتهي المهرجان؟"), "only read questions in English"),
    "HTML in the question": Row(private("<b>When</b> does the festival end? & <script>x</script>"), ANSWER_OR_DECLINE),
    "Markdown in the question": Row(
        private("**When** does the _festival_ end? `rm -rf /` [x](http://e.x)"), ANSWER_OR_DECLINE
    ),
    "another language": Row(private("Wann endet das Hafenfest?"), "only read questions in English"),
    "sticker": Row(private(None, sticker=STICKER), TEXT_ONLY),
    "photo": Row(private(None, photo=PHOTO), TEXT_ONLY),
    "photo with a caption": Row(private(None, photo=PHOTO, caption="When does the festival end?"), TEXT_ONLY),
    "voice": Row(private(None, voice=VOICE), TEXT_ONLY),
    "document from a non-admin": Row(private(None, document=DOCUMENT), TEXT_ONLY),
    "/add document from a non-admin": Row(
        private(
            None,
            document=DOCUMENT,
            caption="/add",
            caption_entities=[{"type": "bot_command", "offset": 0, "length": 4}],
        ),
        REFUSED,
    ),
    "/ask without a question": Row(private("/ask"), USAGE_ASK),
    "/ask with only spaces": Row(private("/ask    "), USAGE_ASK),
    "unknown command": Row(private("/frobnicate now"), UNKNOWN_COMMAND),
    "forwarded question": Row(
        private(
            "When does the festival end?", forward_origin={"type": "hidden_user", "sender_user_name": "X", "date": 1}
        ),
        "Sunday",
    ),
    "message from another bot": Row(
        private("When does the festival end?", **{"from": user(USER_ID, "B", is_bot=True)}), None
    ),
    "group: sticker": Row(group(None, sticker=STICKER), None, GROUP_ID),
    "group: voice": Row(group(None, voice=VOICE), None, GROUP_ID),
    "group: unknown command": Row(group("/frobnicate"), None, GROUP_ID),
    "group: mention alone": Row(group("@CiteTestBot"), USAGE_ASK, GROUP_ID),
    "group: HTML after /ask": Row(group("/ask <i>When</i> does the festival end? &amp;"), ANSWER_OR_DECLINE, GROUP_ID),
    "no sender": Row(
        raw({"message": bare_message(chat=private_chat(USER_ID), text="When does the festival end?")}), "Sunday"
    ),
    "no content at all": Row(
        raw({"message": bare_message(chat=private_chat(USER_ID), **{"from": user(USER_ID)})}), TEXT_ONLY
    ),
    "group message without a sender": Row(
        raw(
            {
                "message": bare_message(
                    chat=GROUP,
                    text="/ask When does the festival end?",
                    entities=[{"type": "bot_command", "offset": 0, "length": 4}],
                )
            }
        ),
        "Sunday",
        GROUP_ID,
    ),
    "an update kind the bot does not handle": Row(
        raw(
            {
                "poll": {
                    "id": "p",
                    "question": "?",
                    "options": [],
                    "total_voter_count": 0,
                    "is_closed": False,
                    "is_anonymous": True,
                    "type": "regular",
                    "allows_multiple_answers": False,
                }
            }
        ),
        None,
    ),
    "an empty update": Row(raw({"message": {}}), None),
    "a message without a chat": Row(
        raw({"message": bare_message(text="When does the festival end?", **{"from": user(USER_ID)})}), None
    ),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
async def test_bad_input_gets_a_clear_reply_or_silence(
    running: Running, row: Row, caplog: pytest.LogCaptureFixture
) -> None:
    row.send(running.send)
    if row.expect is None:
        await running.quiet(0.3)
        assert running.sent() == [] and running.api.calls_of("sendChatAction") == []
    else:
        reply = await running.reply(chat_id=row.chat_id)  # the fake server accepted its HTML
        expected = (row.expect,) if isinstance(row.expect, str) else row.expect
        assert any(phrase in html.unescape(reply["text"]) for phrase in expected), reply["text"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
    running.send.private("How many visitors are expected at the festival?", user_id=ADMIN_ID)
    assert "40,000" in (await running.reply(chat_id=ADMIN_ID))["text"]  # still serving
    assert len(running.sent()) == (0 if row.expect is None else 1) + 1  # one reply, no apology or second message
