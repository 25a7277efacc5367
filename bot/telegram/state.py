"""What the bot remembers while serving: the inbox, the rate limits, the stats.

`bot.telegram.app.open_state` decides where: DATABASE_URL unset, the inbox in a SQLite file
beside the index and the limits and stats in this process's memory (one process serves the
bot); DATABASE_URL set, all of them in PostgreSQL (`bot.telegram.shared`), shared by replicas.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from .inbox import Inbox
from .limits import Limits


class Stats(Protocol):
    """Counters shown by /stats. Both methods may block briefly: call them off the event loop."""

    def count_answers(self, n: int) -> None:
        """Add n answered questions."""

    def answers(self) -> int:
        """Questions answered so far (by every replica, when shared)."""


class MemoryStats:
    """The counters of this process (thread-safe: answers are counted in the batcher's threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers = 0

    def count_answers(self, n: int) -> None:
        with self._lock:
            self._answers += n

    def answers(self) -> int:
        with self._lock:
            return self._answers


@dataclass(frozen=True)
class State:
    """The inbox, the rate limits and the stats of one bot process. Closing the inbox releases all."""

    inbox: Inbox
    limits: Limits
    stats: Stats


def bot_id_of(token: str) -> int:
    """The bot's user id: the digits before the token's colon (checked by check_token)."""
    return int(token.split(":", 1)[0])
