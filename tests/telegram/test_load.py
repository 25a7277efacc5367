"""Load: a burst from many chats is answered in full, one reply per question, in its own chat,
threaded to it; answering runs off the event loop, so one slow question does not hold up the rest.
(The 1,000-question burst with figures is `benchmarks/load.py`; nothing here is timed.)"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from bot.answer import Answer, Answerer
from bot.service import QAService
from bot.settings import Settings
from tests.fakes import FakeEncoder

from .conftest import start_running
from .fake_api import FakeBotApi
from .updates import GROUP, USER_ID, Sender, user

QUESTIONS = {
    "How many visitors are expected at the festival?": "40,000",
    "When does the festival end?": "Sunday",
    "Who cut the ribbon at the old customs house?": "Anna Berg",
    "When was the lamp of the lighthouse relit?": "Saturday",
}


async def test_burst_from_many_chats_gets_one_threaded_reply_per_question(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    settings = tg_settings.model_copy(update={"user_rate_per_minute": 100, "chat_rate_per_minute": 100})
    sender = Sender(fake_api)
    texts = list(QUESTIONS)
    asked: dict[tuple[int, int], str] = {}
    for n in range(120):  # 30 groups, 4 questions each, all waiting before the bot starts
        chat = dict(GROUP, id=GROUP["id"] - n % 30, title=f"Group {n % 30}")
        question = texts[n % len(texts)]
        message = sender.message(chat, f"/ask {question}", user(USER_ID + n))
        fake_api.push("message", message)
        asked[(chat["id"], message["message_id"])] = question
    async with start_running(settings, tg_service, fake_api) as running:
        await running.replies(count=len(asked))
        await running.quiet(0.5)
    delivered = [c.params for c in fake_api.calls_of("sendMessage") if c.error is None]
    where = Counter((p["chat_id"], p["reply_parameters"]["message_id"]) for p in delivered)
    assert where == Counter(dict.fromkeys(asked, 1))  # each question: one reply, in its chat, threaded to it
    for p in delivered:
        assert QUESTIONS[asked[(p["chat_id"], p["reply_parameters"]["message_id"])]] in p["text"]


class SlowlyAnswerer:
    """The real answerer, except that a batch holding the word 'slowly' waits for a release."""

    def __init__(self, inner: Answerer, release: threading.Event) -> None:
        self.inner, self.release = inner, release

    def answer_many(self, questions: list[str]) -> list[Answer]:
        if any("slowly" in q for q in questions):
            assert self.release.wait(timeout=15), "never released"
        return self.inner.answer_many(questions)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class OneSlowQuestion(QAService):
    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, encoder_factory=FakeEncoder)
        self.release = threading.Event()

    @property
    def answerer(self) -> Answerer:
        return SlowlyAnswerer(QAService.answerer.fget(self), self.release)  # type: ignore[attr-defined, return-value]


async def test_one_slow_question_does_not_hold_up_the_others(tg_settings: Settings, fake_api: FakeBotApi) -> None:
    service = OneSlowQuestion(tg_settings)
    service.open()
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private("When does the festival end, slowly?", user_id=USER_ID)
        await running.reply("sendChatAction", chat_id=USER_ID)  # the slow one is being answered
        for n in range(1, 6):
            running.send.private("How many visitors are expected at the festival?", user_id=USER_ID + n)
        others = await running.replies(count=5)
        assert all("40,000" in r["text"] for r in others) and not service.release.is_set()
        service.release.set()
        slow = await running.reply(chat_id=USER_ID)
        assert "Sunday" in slow["text"]
