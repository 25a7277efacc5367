"""Restarts: questions in flight when the bot is stopped are answered once, none lost, none twice.

Two application runs against the same fake server, stopped the way `run_bot` stops on
SIGTERM (the feed stops taking updates, then the application stops).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from bot.answer import Answerer
from bot.index import BuildReport
from bot.service import QAService
from bot.settings import Settings
from bot.telegram.polling import Feed
from tests.fakes import FakeEncoder

from .conftest import start_running
from .fake_api import ApiError, FakeBotApi
from .updates import GROUP, USER_ID, Sender, user

QUESTIONS = [
    "How many visitors are expected at the festival?",
    "When does the festival end?",
    "Who cut the ribbon?",
    "When was the lamp of the lighthouse relit?",
]


class HeldService(QAService):
    """Answers only once `release` is set: questions stay in flight as long as a test needs."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, encoder_factory=FakeEncoder)
        self.release = threading.Event()

    @property
    def answerer(self) -> Answerer:
        if not self.release.wait(timeout=15):
            raise TimeoutError("the test never released the answers")
        return QAService.answerer.fget(self)  # type: ignore[attr-defined]

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> BuildReport:
        raise AssertionError("not used")


def ask_in_groups(sender: Sender, count: int, start: int = 0) -> list[dict[str, Any]]:
    """`count` questions from different users in a few groups."""
    asked = []
    for n in range(start, start + count):
        group = dict(GROUP, id=GROUP["id"] - n % 3, title=f"Group {n % 3}")
        message = sender.message(group, f"/ask {QUESTIONS[n % len(QUESTIONS)]}", user(USER_ID + n))
        sender.api.push("message", message)
        asked.append(message)
    return asked


def answers_per_question(api: FakeBotApi) -> Counter[tuple[int, int]]:
    """How many replies were delivered to each (chat, message) question."""
    return Counter(
        (c.params["chat_id"], c.params["reply_parameters"]["message_id"])
        for c in api.calls_of("sendMessage")
        if c.error is None
    )


async def stop_while_in_flight(settings: Settings, api: FakeBotApi, asked: list[dict[str, Any]]) -> None:
    """Run 1: every question fetched and being answered when the bot is told to stop."""
    service = HeldService(settings)
    service.release.set()
    service.open()
    service.release.clear()
    async with start_running(settings, service, api) as running:
        await all_in_flight(running.feed, len(asked))
        threading.Timer(0.3, service.release.set).start()  # answers come while the bot is stopping
    assert service.release.is_set()


async def all_in_flight(feed: Feed, count: int) -> None:
    """Wait until `count` questions are fetched and being answered."""
    for _ in range(200):
        if feed.in_flight >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {feed.in_flight} of {count} questions in flight")


def key(message: dict[str, Any]) -> tuple[int, int]:
    return message["chat"]["id"], message["message_id"]


async def test_questions_in_flight_at_stop_are_answered_once_across_a_restart(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    sender = Sender(fake_api)
    first = ask_in_groups(sender, 12)
    await stop_while_in_flight(tg_settings, fake_api, first)
    later = ask_in_groups(sender, 6, start=12)  # asked while the bot is down
    async with start_running(tg_settings, tg_service, fake_api) as running:
        await running.replies(count=len(first) + len(later))
        await running.quiet(0.5)
    answered = answers_per_question(fake_api)
    assert answered == Counter({key(m): 1 for m in first + later})


def fail_after_fetching(api: FakeBotApi, times: int) -> None:
    """Once getUpdates has handed out messages, its next `times` calls fail (confirming nothing)."""
    real = api.handlers["getUpdates"]
    state = {"fetched": False, "left": times}

    def flaky(params: dict[str, Any]) -> list[dict[str, Any]]:
        if state["fetched"] and state["left"] > 0:
            state["left"] -= 1
            raise ApiError(502, "Bad Gateway")
        result = real(params)
        state["fetched"] = state["fetched"] or any("message" in u for u in result)
        return result

    api.handlers["getUpdates"] = flaky


async def test_questions_are_not_answered_twice_when_confirming_them_fails_at_first(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    sender = Sender(fake_api)
    service = HeldService(tg_settings)
    service.release.set()
    service.open()
    service.release.clear()
    fail_after_fetching(fake_api, times=3)  # the polls after the fetch and the updater's last call on stop
    async with start_running(tg_settings, service, fake_api) as running:
        first = ask_in_groups(sender, 6)
        await all_in_flight(running.feed, len(first))
        service.release.set()
        await asyncio.to_thread(fake_api.wait_for, "sendMessage", lambda c: True, 10.0, len(first))
    later = ask_in_groups(sender, 3, start=6)
    async with start_running(tg_settings, tg_service, fake_api) as running:
        await running.replies(count=len(first) + len(later))
        await running.quiet(0.5)
    assert answers_per_question(fake_api) == Counter({key(m): 1 for m in first + later})
