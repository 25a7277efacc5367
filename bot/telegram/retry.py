"""Outgoing calls: Telegram's flood limits, 429 retry_after honoured, network failures retried.

`AIORateLimiter` keeps every call within Telegram's limits (30 requests a second overall, 20 a
minute per group) and waits out a 429's retry_after; `RetryingRateLimiter` also holds every
other request back until that retry_after has passed. `RetryingRateLimiter` adds retries with
exponential backoff for failures on the network side: HTTP 5xx, timeouts and dropped
connections (python-telegram-bot raises them as NetworkError). A BadRequest (also a
NetworkError subclass) is a wrong call, never retried; Forbidden (bot blocked) is not a network
error. getUpdates never comes here: the Updater's polling loop retries it itself.

A request that timed out may have reached Telegram; resending it can then show a message
twice. That is the price of not losing the answer, and Telegram offers no idempotency key.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from datetime import timedelta
from typing import Any, Callable, Coroutine

from aiolimiter import AsyncLimiter
from telegram.constants import FloodLimit
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.warnings import PTBDeprecationWarning
from telegram.ext import AIORateLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

log = logging.getLogger(__name__)

NOT_RETRIED = frozenset({"sendChatAction"})  # cosmetic, and stale a few seconds later
FIRST_PAUSE = 0.5  # seconds; doubled on each retry (with jitter), at most MAX_PAUSE
MAX_PAUSE = 8.0

JSON = bool | dict[str, Any] | list[dict[str, Any]]


def _seconds(exc: RetryAfter) -> float:
    """retry_after in seconds (an int today, a timedelta in a future python-telegram-bot)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def is_network_failure(exc: BaseException) -> bool:
    """5xx, timeouts and dropped connections; not a request Telegram refused as wrong."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


def _log_retry(endpoint: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        # said once per request; the later retries of the same request only at DEBUG
        level = logging.WARNING if state.attempt_number == 1 else logging.DEBUG
        log.log(level, "%s failed (%s); retry %d in %.1f s", endpoint, error, state.attempt_number, pause)

    return before_sleep


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, 429 retry_after) plus backoff retries of network failures."""

    def __init__(self, network_retries: int, flood_retries: int = 3, first_pause: float = FIRST_PAUSE) -> None:
        super().__init__(max_retries=flood_retries)
        self.network_retries = network_retries
        self.first_pause = first_pause
        self._hold_until = 0.0  # loop time before which no request is sent (a 429's retry_after)
        # AIORateLimiter's overall limit is a bucket of 30: a burst of 30 at once, and after a
        # hold everything it admitted meanwhile at once. This paces chat requests evenly instead.
        self._pace = AsyncLimiter(1, 1 / FloodLimit.MESSAGES_PER_SECOND)

    def _flood_guarded(
        self, callback: Callable[..., Coroutine[Any, Any, JSON]], paced: bool
    ) -> Callable[..., Coroutine[Any, Any, JSON]]:
        """The callback, held back while any request's 429 retry_after runs, then paced.

        AIORateLimiter pauses other requests during a retry_after too, but any request that
        ends meanwhile (even a cancelled "typing…") lifts its pause early; this hold does not.
        """

        async def guarded(*args: Any, **kwargs: Any) -> JSON:
            loop = asyncio.get_running_loop()
            await self._wait_out_hold()
            if paced:
                async with self._pace:
                    await self._wait_out_hold()
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                self._hold_until = max(self._hold_until, loop.time() + _seconds(exc) + 0.1)
                raise

        return guarded

    async def _wait_out_hold(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._hold_until - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSON:
        await self._wait_out_hold()  # before taking a place in the rate limits: no burst when it ends
        callback = self._flood_guarded(callback, paced=data.get("chat_id") is not None)
        if endpoint in NOT_RETRIED or self.network_retries == 0:
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_network_failure),
            stop=stop_after_attempt(self.network_retries + 1),
            wait=wait_exponential(multiplier=self.first_pause, max=MAX_PAUSE) + wait_random(0, self.first_pause / 2),
            before_sleep=_log_retry(endpoint),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        raise AssertionError("unreachable: tenacity either returns or re-raises")
