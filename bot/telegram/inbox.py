"""The durable inbox: every update is stored before Telegram is told it arrived, answered from the store.

Order of events for one update:
1. fetched (getUpdates) or posted (webhook) as raw JSON;
2. `Inbox.store` commits it (SQLite, WAL, synchronous=NORMAL: survives a crash of the process);
3. only then is it confirmed to Telegram: the next getUpdates offset, or the webhook's HTTP 200;
4. the handlers answer it; `Inbox.mark_done` records that the reply was sent.
A restart hands out again what was stored and not done (`Inbox.pending`), so a crash loses no
question; a question is answered twice only when the process died between Telegram accepting
the reply and step 4 (milliseconds). Entries done for longer than INBOX_KEEP_HOURS are pruned.

`Inbox` is the protocol the bot uses; `SqliteInbox` is the embedded store in a file beside the
index; `bot.telegram.shared.PgInbox` keeps it in PostgreSQL (DATABASE_URL) for several replicas,
whose claims are leases renewed by `heartbeat` (see `renew_every`).
Chats that Telegram moved (a group upgraded to a supergroup) are remembered here too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

INBOX_FILE = "inbox.sqlite3"
MAX_ATTEMPTS = 3  # an update whose handling was cut short this often (crash loop) is given up

SCHEMA = """
CREATE TABLE IF NOT EXISTS updates (
    bot_id      INTEGER NOT NULL,
    update_id   INTEGER NOT NULL,
    payload     TEXT    NOT NULL,           -- the update as Telegram sent it (JSON)
    received_at REAL    NOT NULL,           -- unix time
    state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'skipped')),
    attempts    INTEGER NOT NULL DEFAULT 0, -- handling started this often
    claimed_by  TEXT,                       -- which process is handling it (for several replicas)
    done_at     REAL,
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX IF NOT EXISTS updates_pending ON updates (bot_id, state, update_id);
CREATE TABLE IF NOT EXISTS chat_moves (
    bot_id   INTEGER NOT NULL,
    old_id   INTEGER NOT NULL,
    new_id   INTEGER NOT NULL,
    moved_at REAL    NOT NULL,
    PRIMARY KEY (bot_id, old_id)
);
"""


class InboxError(RuntimeError):
    """The inbox could not store or update an entry (disk full, database locked or gone)."""


class PollerBusy(RuntimeError):
    """Another process polls Telegram for this bot through the same store; says what to do."""


@dataclass(frozen=True)
class Entry:
    """A stored update: its id, the raw JSON object and how often its handling was started."""

    update_id: int
    payload: dict[str, Any]
    attempts: int


class Inbox(Protocol):
    """What the bot needs from an update store (SQLite here; PostgreSQL in bot.telegram.shared)."""

    # Seconds between two heartbeats of a store shared by several processes (their claims are
    # leases that run out unless renewed); None: one process only, no heartbeat needed.
    renew_every: float | None

    def store(self, updates: Iterable[Mapping[str, Any]]) -> list[int]:
        """Commit the updates (ones already stored are ignored); returns the ids newly stored.

        Raises InboxError when they could not be stored: then nothing may be confirmed to Telegram.
        """

    def next_offset(self) -> int | None:
        """The getUpdates offset that confirms everything stored (None when nothing ever was)."""

    def pending(self, limit: int = 1000) -> list[Entry]:
        """Stored updates not done yet (and not held by another live process), oldest first."""

    def start(self, update_id: int) -> Entry | None:
        """Claim an update for handling (counts an attempt); None when it is done already."""

    def mark_done(self, update_id: int, state: str = "done") -> None:
        """Record that the update was answered (or, with state='skipped', given up)."""

    def prune(self, keep_seconds: float) -> int:
        """Forget updates done more than keep_seconds ago; returns how many."""

    def moved_to(self, chat_id: int) -> int | None:
        """The chat a chat was moved to (group -> supergroup), if Telegram said so."""

    def remember_move(self, old_id: int, new_id: int) -> None:
        """Remember that Telegram moved a chat to a new id."""

    def heartbeat(self, update_ids: Sequence[int]) -> None:
        """Still handling these updates: keep them claimed (a shared store; called every renew_every)."""

    def hold_polling(self) -> None:
        """Become the one process polling Telegram through this store, or raise PollerBusy."""

    def release(self, update_ids: Sequence[int]) -> None:
        """Stopping without finishing these updates: other processes may take them at once."""

    def close(self) -> None:
        """Release the store."""


class SqliteInbox:
    """The inbox in one SQLite file (WAL, synchronous=NORMAL); safe to use from several threads."""

    renew_every: float | None = None  # one process: its claims need no renewal

    def __init__(self, path: Path, bot_id: int, owner: str = "") -> None:
        if bot_id <= 0:
            raise ValueError(f"bot_id must be the bot's positive user id, got {bot_id!r}")
        self.path = path
        self.bot_id = bot_id
        self.owner = owner
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._moves = dict(
            self._db.execute("SELECT old_id, new_id FROM chat_moves WHERE bot_id = ?", (bot_id,)).fetchall()
        )

    @contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """sqlite3 errors as InboxError, saying what failed and where; the lock held meanwhile."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise InboxError(f"inbox {self.path}: cannot {what}: {exc}") from exc

    def store(self, updates: Iterable[Mapping[str, Any]]) -> list[int]:
        rows = [(self.bot_id, int(u["update_id"]), json.dumps(u, ensure_ascii=False), time.time()) for u in updates]
        if not rows:
            return []
        with self._guard("store updates"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                fresh = [
                    r[1]
                    for r in rows
                    if self._db.execute(
                        "INSERT OR IGNORE INTO updates (bot_id, update_id, payload, received_at) VALUES (?, ?, ?, ?)", r
                    ).rowcount
                ]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return fresh

    def next_offset(self) -> int | None:
        with self._guard("read the offset"):
            (newest,) = self._db.execute(
                "SELECT max(update_id) FROM updates WHERE bot_id = ?", (self.bot_id,)
            ).fetchone()
        return None if newest is None else newest + 1

    def pending(self, limit: int = 1000) -> list[Entry]:
        with self._guard("read pending updates"):
            rows = self._db.execute(
                "SELECT update_id, payload, attempts FROM updates WHERE bot_id = ? AND state = 'pending' "
                "ORDER BY update_id LIMIT ?",
                (self.bot_id, limit),
            ).fetchall()
        return [Entry(update_id, json.loads(payload), attempts) for update_id, payload, attempts in rows]

    def start(self, update_id: int) -> Entry | None:
        with self._guard("claim an update"):
            row = self._db.execute(
                "UPDATE updates SET attempts = attempts + 1, claimed_by = ? "
                "WHERE bot_id = ? AND update_id = ? AND state = 'pending' RETURNING payload, attempts",
                (self.owner, self.bot_id, update_id),
            ).fetchone()
        return None if row is None else Entry(update_id, json.loads(row[0]), row[1])

    def mark_done(self, update_id: int, state: str = "done") -> None:
        if state not in ("done", "skipped"):
            raise ValueError(f"state must be 'done' or 'skipped', got {state!r}")
        with self._guard("mark an update done"):
            self._db.execute(
                "UPDATE updates SET state = ?, done_at = ? WHERE bot_id = ? AND update_id = ?",
                (state, time.time(), self.bot_id, update_id),
            )

    def prune(self, keep_seconds: float) -> int:
        cutoff = time.time() - keep_seconds
        with self._guard("prune"):
            newest = self._db.execute("SELECT max(update_id) FROM updates WHERE bot_id = ?", (self.bot_id,)).fetchone()[
                0
            ]
            # the newest entry stays whatever its age: it carries the getUpdates offset
            return self._db.execute(
                "DELETE FROM updates WHERE bot_id = ? AND state != 'pending' AND done_at < ? AND update_id < ?",
                (self.bot_id, cutoff, newest if newest is not None else 0),
            ).rowcount

    def moved_to(self, chat_id: int) -> int | None:
        with self._lock:
            return self._moves.get(chat_id)

    def remember_move(self, old_id: int, new_id: int) -> None:
        with self._guard("remember a chat move"):
            self._moves[old_id] = new_id
            self._db.execute(
                "INSERT OR REPLACE INTO chat_moves (bot_id, old_id, new_id, moved_at) VALUES (?, ?, ?, ?)",
                (self.bot_id, old_id, new_id, time.time()),
            )

    def heartbeat(self, update_ids: Sequence[int]) -> None:
        """Nothing to renew: no other process takes updates from this file."""

    def hold_polling(self) -> None:
        """Nothing to hold: Telegram itself refuses a second poller (409 Conflict)."""

    def release(self, update_ids: Sequence[int]) -> None:
        """Nothing to release: the next start of this process takes them."""

    def counts(self) -> dict[str, int]:
        """How many stored updates are in each state (for logs and tests)."""
        with self._lock:
            return dict(
                self._db.execute(
                    "SELECT state, count(*) FROM updates WHERE bot_id = ? GROUP BY state", (self.bot_id,)
                ).fetchall()
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
