"""Outgoing calls: Telegram's flood limits per chat and overall, 429s per chat, bounded resends.

`FairRateLimiter` is python-telegram-bot's documented extension point (`BaseRateLimiter`),
built on aiolimiter's leaky buckets:
- overall: a bucket of 3 refilled at 24 a second, so an idle bot sends at once, only a busy one
  is paced, and no second ever sees more than 30;
- per chat: about one message a second in a private chat (a burst of 3) and 20 a minute in a
  group, a little under Telegram's limits, so a flood in one chat waits in that chat only;
- a 429 for one chat holds back that chat for its retry_after, not every chat;
- "typing…" is cosmetic: sent only when the chat's bucket has room for it and every answer
  being worked out in that chat (the call's rate_limit_args), never waited for; else dropped.

Network failures (5xx, dropped connections) are retried with exponential backoff (tenacity). A
request that timed out may have reached Telegram, and Telegram has no idempotency key: it is
resent at most once, so a user sees an answer at most twice; TELEGRAM_TIMEOUT is long enough
(30 s by default) that a slow but working Bot API is waited for instead. A BadRequest is a wrong
call, never retried. getUpdates never comes here (the library passes it by).
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import BaseRateLimiter
from telegram.warnings import PTBDeprecationWarning
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.5  # seconds; doubled on each retry (with jitter), at most MAX_PAUSE
MAX_PAUSE = 8.0
OVERALL_BURST, OVERALL_PERIOD = 3, 3 / 24  # at once when idle; 3 + 24 in a second leaves room for jitter under 30
PRIVATE_BURST, PRIVATE_PERIOD = 3, 3.15  # a burst of 3, then one message every 1.05 s
GROUP_BURST, GROUP_PERIOD = 20, 63.0  # 20 a minute, with a little room
FLOOD_RETRIES = 3  # 429s waited out per request
TIMEOUT_RESENDS = 1  # a timed-out request may have arrived: resent at most once
MAX_TRACKED = 10_000  # idle chat buckets beyond this many are forgotten
COSMETIC = frozenset({"sendChatAction"})

JSON = bool | dict[str, Any] | list[dict[str, Any]]


def retry_seconds(exc: RetryAfter) -> float:
    """retry_after in seconds (an int today, a timedelta in a future python-telegram-bot)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_network_failure(exc: BaseException) -> bool:
    """5xx, timeouts and dropped connections; not a request Telegram refused as wrong."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


class _Resends:
    """tenacity's retry condition: network failures, timeouts only TIMEOUT_RESENDS times."""

    def __init__(self) -> None:
        self.timeouts = 0

    def __call__(self, exc: BaseException) -> bool:
        if isinstance(exc, TimedOut):
            self.timeouts += 1
            return self.timeouts <= TIMEOUT_RESENDS
        return is_network_failure(exc)


def _log_retry(endpoint: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        # said once per request; the later retries of the same request only at DEBUG
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(level, "%s failed (%s); retry %d in %.1f s", endpoint, error, state.attempt_number, pause)

    return before_sleep


class ChatLimits:
    """A leaky bucket and a 429 hold per chat (private chats and groups have their own rates)."""

    def __init__(self) -> None:
        self._buckets: dict[int | str, AsyncLimiter] = {}
        self._hold_until: dict[int | str, float] = {}

    def bucket(self, chat_id: int | str) -> AsyncLimiter:
        limiter = self._buckets.get(chat_id)
        if limiter is None:
            if len(self._buckets) >= MAX_TRACKED:
                self._forget_idle()
            group = not (isinstance(chat_id, int) and chat_id > 0)
            limiter = AsyncLimiter(*((GROUP_BURST, GROUP_PERIOD) if group else (PRIVATE_BURST, PRIVATE_PERIOD)))
            self._buckets[chat_id] = limiter
        return limiter

    def held_for(self, chat_id: int | str) -> float:
        """Seconds this chat is still held back by a 429."""
        return max(0.0, self._hold_until.get(chat_id, 0.0) - asyncio.get_running_loop().time())

    def hold(self, chat_id: int | str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        self._hold_until[chat_id] = max(self._hold_until.get(chat_id, 0.0), until)

    def _forget_idle(self) -> None:
        for key in [k for k, lim in self._buckets.items() if lim.has_capacity(lim.max_rate) and not self.held_for(k)]:
            del self._buckets[key]
            self._hold_until.pop(key, None)


class FairRateLimiter(BaseRateLimiter[int]):
    """Flood limits per chat and overall, 429s held per chat, network failures retried (bounded)."""

    def __init__(self, network_retries: int, first_pause: float = FIRST_PAUSE) -> None:
        self.network_retries = network_retries
        self.first_pause = first_pause
        self.flood_retries = FLOOD_RETRIES
        self.skipped_actions = 0  # "typing…" not sent because the chat was busy
        self._overall = AsyncLimiter(OVERALL_BURST, OVERALL_PERIOD)
        self._chats = ChatLimits()
        self._held_overall = 0.0  # a 429 for a call without a chat (e.g. answerInlineQuery)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSON:
        chat_id = data.get("chat_id")
        if endpoint in COSMETIC:
            return await self._cosmetic(callback, args, kwargs, chat_id, rate_limit_args or 0)
        resends = _Resends()
        retrying = AsyncRetrying(
            retry=retry_if_exception(resends),
            stop=stop_after_attempt(self.network_retries + 1),
            wait=wait_exponential(multiplier=self.first_pause, max=MAX_PAUSE) + wait_random(0, self.first_pause / 2),
            before_sleep=_log_retry(endpoint),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._within_limits(callback, args, kwargs, endpoint, chat_id)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    async def _within_limits(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        chat_id: int | str | None,
    ) -> JSON:
        """One call, paced in its chat and overall; a 429 holds its chat (only) and is waited out."""
        for flood in range(self.flood_retries + 1):
            if chat_id is not None:
                await self._wait(self._chats.held_for(chat_id))
                await self._chats.bucket(chat_id).acquire()
                await self._wait(self._chats.held_for(chat_id))
            else:
                await self._wait(self._held_overall - asyncio.get_running_loop().time())
            await self._overall.acquire()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc) + 0.1
                if chat_id is not None:
                    self._chats.hold(chat_id, seconds)
                else:
                    self._held_overall = asyncio.get_running_loop().time() + seconds
                if flood == self.flood_retries:
                    raise
                log.info("%s hit Telegram's flood limit in chat %s; waiting %.1f s", endpoint, chat_id, seconds)
        raise AssertionError("unreachable: the last 429 is re-raised")

    async def _cosmetic(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        chat_id: int | str | None,
        answers_due: int,
    ) -> JSON:
        """A chat action: only when the chat has room for it and the `answers_due` there; never waits or retried."""
        if chat_id is not None:
            bucket = self._chats.bucket(chat_id)
            room = max(answers_due, 1) + 1
            if self._chats.held_for(chat_id) or not bucket.has_capacity(room) or not self._overall.has_capacity(2):
                self.skipped_actions += 1
                return True
            await bucket.acquire()
        await self._overall.acquire()
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as exc:
            if chat_id is not None:
                self._chats.hold(chat_id, retry_seconds(exc) + 0.1)
            raise

    @staticmethod
    async def _wait(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
