"""Telegram faults: flood control, 5xx, timeouts and dropped connections on getUpdates and
sendMessage. The bot survives each one and the question is answered once the fault clears."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from bot.service import QAService
from bot.settings import Settings

from .conftest import Running, start_running
from .fake_api import DROP, Call, FakeBotApi, Fault
from .updates import GROUP_ID, OTHER_ID, USER_ID

QUESTION = "How many visitors are expected at the festival?"
TIMEOUT = 1.0  # TELEGRAM_TIMEOUT for these tests: a hang of 1.5 s is a timeout


def failed(call: Call) -> bool:
    return call.error is not None


def delivered(running: Running) -> list[Call]:
    return [c for c in running.api.calls_of("sendMessage") if c.error is None]


@pytest.fixture
async def impatient(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Running]:
    """The bot with a short Bot API timeout, so that timeouts are quick to provoke."""
    caplog.set_level(logging.INFO)
    settings = tg_settings.model_copy(update={"telegram_timeout": TIMEOUT})
    async with start_running(settings, tg_service, fake_api) as running:
        yield running


SEND_FAULTS = {
    "500": Fault(500, "Internal Server Error"),
    "502": Fault(502, "Bad Gateway"),
    "dropped": DROP,
    "timeout": Fault.hang(TIMEOUT + 0.5),
}


@pytest.mark.parametrize("fault", SEND_FAULTS.values(), ids=SEND_FAULTS.keys())
async def test_send_message_failures_are_retried_until_the_answer_is_delivered(
    impatient: Running, fault: Fault
) -> None:
    impatient.api.fail_next("sendMessage", fault)
    question = impatient.send.group(f"/ask {QUESTION}")
    attempts = await impatient.replies(count=2, failed_too=True, chat_id=GROUP_ID)
    assert [c.error is not None for c in impatient.api.calls_of("sendMessage")][:2] == [True, False]
    assert attempts[0]["text"] == attempts[1]["text"] and "40,000" in attempts[1]["text"]
    assert attempts[1]["reply_parameters"]["message_id"] == question["message_id"]
    await impatient.quiet()
    assert len(delivered(impatient)) == 1  # delivered once: each failed attempt was never carried out


GET_UPDATES_FAULTS = {
    "502": Fault(502, "Bad Gateway"),
    "dropped": DROP,
    "timeout": Fault.hang(TIMEOUT + 2.5),  # a long poll waits 2 s (poll timeout) + TELEGRAM_TIMEOUT
}


@pytest.mark.parametrize("fault", GET_UPDATES_FAULTS.values(), ids=GET_UPDATES_FAULTS.keys())
async def test_get_updates_failures_are_retried_and_the_question_still_answered(
    impatient: Running, fault: Fault
) -> None:
    times = 1 if fault.delay else 2
    impatient.api.fail_next("getUpdates", fault, times=times)
    await asyncio.to_thread(impatient.api.wait_for, "getUpdates", failed, 10.0)  # polling is failing now
    impatient.send.private(QUESTION)
    reply = await impatient.reply(chat_id=USER_ID)
    assert "40,000" in reply["text"]
    await asyncio.to_thread(impatient.api.wait_for, "getUpdates", failed, 10.0, times)  # every fault was met
    await impatient.quiet()
    assert len(delivered(impatient)) == 1


async def test_flood_control_retry_after_is_waited_out(running: Running) -> None:
    running.api.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 1", {"retry_after": 1}))
    running.send.private(QUESTION)
    await running.replies(count=2, failed_too=True, chat_id=USER_ID)
    refused, delivered = running.api.calls_of("sendMessage")[:2]
    assert refused.error is not None and refused.error.status == 429 and delivered.error is None
    assert delivered.at - refused.at >= 1.0  # not resent before Telegram said it may be
    assert delivered.params["text"] == refused.params["text"] and "40,000" in delivered.params["text"]


async def test_flood_control_holds_back_only_the_chat_it_was_for(running: Running) -> None:
    running.api.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 1", {"retry_after": 1}))
    running.send.private(QUESTION)
    await asyncio.to_thread(running.api.wait_for, "sendMessage", failed)
    running.send.private("When does the festival end?", user_id=OTHER_ID)
    other = (await running.replies(chat_id=OTHER_ID))[0]
    assert "Sunday" in other["text"]
    await running.replies(chat_id=USER_ID)
    refused, *rest = running.api.calls_of("sendMessage")
    [to_other] = [c for c in rest if c.params["chat_id"] == OTHER_ID]
    [retried] = [c for c in rest if c.params["chat_id"] == USER_ID]
    assert to_other.at < retried.at  # the other chat did not wait for the flooded one
    assert retried.at - refused.at >= 1.0  # the flooded chat waited out its retry_after


async def test_a_fault_that_outlasts_the_retries_loses_one_reply_not_the_bot(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi, caplog: pytest.LogCaptureFixture
) -> None:
    settings = tg_settings.model_copy(update={"telegram_retries": 1})
    async with start_running(settings, tg_service, fake_api) as running:
        running.api.fail_next("sendMessage", Fault(503, "Service Unavailable"), times=2)
        running.send.private(QUESTION)
        await running.replies(count=2, failed_too=True, chat_id=USER_ID)
        running.send.private("When does the festival end?")
        reply = await running.reply(chat_id=USER_ID)
        assert "Sunday" in reply["text"]
    assert any("problem talking to Telegram" in r.getMessage() for r in caplog.records)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("bot"))
