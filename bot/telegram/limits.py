"""Per-user and per-chat question rate limits (leaky buckets from aiolimiter).

A user over the limit is told once per window ("slow down"); the questions after that notice
are dropped quietly and counted, so a flood never turns into a flood of notices.
`QuestionLimits` keeps the buckets in memory; `bot.telegram.shared.PgLimits` keeps the same
buckets in PostgreSQL, shared by every replica (DATABASE_URL). `Limits` is what handlers use.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Protocol

from aiolimiter import AsyncLimiter

NOTICE_WINDOW = 60.0  # seconds: at most one "slow down" notice per user (or chat) in this time


class Verdict(Enum):
    """What to do with a question: answer it, say "slow down" (once a window), or drop it quietly."""

    ANSWER = "answer"
    NOTICE = "notice"
    DROP = "drop"


MAX_TRACKED = 10_000  # idle buckets beyond this many are forgotten


class Limits(Protocol):
    """What handlers ask before answering a question."""

    dropped: int  # questions dropped quietly after a notice (by this process)

    async def verdict(self, user_id: int | None, chat_id: int | None) -> Verdict:
        """ANSWER (counted) within the limits; over them NOTICE once per window for the asker, else DROP."""

    async def allow(self, user_id: int | None, chat_id: int | None) -> bool:
        """True (and counted) when both the user and the chat may ask another question now."""


class _Buckets:
    """One AsyncLimiter per key, created on first use, idle ones dropped when there are many."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._limiters: dict[int, AsyncLimiter] = {}

    def get(self, key: int) -> AsyncLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            if len(self._limiters) >= MAX_TRACKED:
                self._forget_idle()
            limiter = self._limiters[key] = AsyncLimiter(self.per_minute, 60)
        return limiter

    def _forget_idle(self) -> None:
        for key in [k for k, lim in self._limiters.items() if lim.has_capacity(self.per_minute)]:
            del self._limiters[key]


class QuestionLimits:
    """Allows at most USER_RATE_PER_MINUTE questions per user and CHAT_RATE_PER_MINUTE per chat."""

    def __init__(self, user_per_minute: int, chat_per_minute: int) -> None:
        self._users = _Buckets(user_per_minute)
        self._chats = _Buckets(chat_per_minute)
        self._noticed: dict[int, float] = {}  # who was told to slow down, when (monotonic)
        self.dropped = 0  # questions dropped quietly after a notice

    async def verdict(self, user_id: int | None, chat_id: int | None) -> Verdict:
        """ANSWER (counted) within the limits; over them NOTICE once per window for the asker, else DROP."""
        if await self.allow(user_id, chat_id):
            return Verdict.ANSWER
        who = user_id if user_id is not None else chat_id
        now = time.monotonic()
        if who is not None and now - self._noticed.get(who, -NOTICE_WINDOW) < NOTICE_WINDOW:
            self.dropped += 1
            return Verdict.DROP
        if who is not None:
            if len(self._noticed) >= MAX_TRACKED:
                self._noticed = {k: t for k, t in self._noticed.items() if now - t < NOTICE_WINDOW}
            self._noticed[who] = now
        return Verdict.NOTICE

    async def allow(self, user_id: int | None, chat_id: int | None) -> bool:
        """True (and counted) when both the user and the chat may ask another question now."""
        limiters = []
        if user_id is not None:
            limiters.append(self._users.get(user_id))
        if chat_id is not None:
            limiters.append(self._chats.get(chat_id))
        if not all(limiter.has_capacity() for limiter in limiters):
            return False
        for limiter in limiters:
            await limiter.acquire()  # has capacity: returns at once
        return True
