"""Outgoing calls: Telegram's flood limits, 429 retry_after honoured, network failures retried.

`AIORateLimiter` keeps every call within Telegram's limits (30 requests a second overall, 20 a
minute per group) and waits out a 429's retry_after. `RetryingRateLimiter` adds retries with
exponential backoff for failures on the network side: HTTP 5xx, timeouts and dropped
connections (python-telegram-bot raises them as NetworkError). A BadRequest (also a
NetworkError subclass) is a wrong call, never retried; Forbidden (bot blocked) is not a network
error. getUpdates never comes here: the Updater's polling loop retries it itself.

A request that timed out may have reached Telegram; resending it can then show a message
twice. That is the price of not losing the answer, and Telegram offers no idempotency key.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Coroutine

from telegram.error import BadRequest, NetworkError
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


def is_network_failure(exc: BaseException) -> bool:
    """5xx, timeouts and dropped connections; not a request Telegram refused as wrong."""
    return isinstance(exc, NetworkError) and not isinstance(exc, BadRequest)


def _log_retry(endpoint: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s failed (%s); retry %d in %.1f s", endpoint, error, state.attempt_number, pause)

    return before_sleep


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, 429 retry_after) plus backoff retries of network failures."""

    def __init__(self, network_retries: int, flood_retries: int = 3, first_pause: float = FIRST_PAUSE) -> None:
        super().__init__(max_retries=flood_retries)
        self.network_retries = network_retries
        self.first_pause = first_pause

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSON]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSON:
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
