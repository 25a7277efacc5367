"""The bot's state in PostgreSQL (DATABASE_URL), shared by every replica of one bot.

Tables from bot/migrations/0002_telegram_state.sql (`python -m bot db migrate`):
- the inbox (`PgInbox`): an update is stored once (INSERT ... ON CONFLICT DO NOTHING, so a
  second replica receiving it again changes nothing) and claimed by one replica at a time
  (an UPDATE whose condition PostgreSQL re-checks under the row lock). A claim is a lease of
  INBOX_LEASE_SECONDS that the replica renews while it handles the update (`heartbeat`); when
  a replica dies, its leases run out and the other replicas take its updates over (they look
  for them at every heartbeat). One poller per bot: a session advisory lock (`hold_polling`).
- the rate limits (`PgLimits`): the same leaky buckets as the in-memory ones, one SQL function
  call per question, so a user's limit holds whichever replica answers.
- the stats (`PgStats`) and the chats Telegram moved, for every replica.

Calls block on the network: the bot makes them off the event loop (polling.Feed's inbox
threads, asyncio.to_thread, the batcher's workers). Database errors become InboxError for the
inbox (the update is not confirmed to Telegram, which sends it again).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..db import LOCK_NAMESPACE, DatabaseProblem, connect, pending
from ..settings import Settings
from .inbox import Entry, InboxError, PollerBusy
from .limits import NOTICE_WINDOW, Verdict
from .state import State

log = logging.getLogger(__name__)

POLLER_LOCK = 2  # pg_advisory_lock(namespace, POLLER_LOCK + bot id): one poller per bot (db.MIGRATE_LOCK is 1)
POOL_SIZE = 8  # connections per replica (the inbox threads, the limits, the stats)
BUCKET_PRUNE_EVERY = 600.0  # seconds between deletions of idle rate-limit buckets
BUCKET_IDLE = "10 minutes"  # a bucket untouched this long is empty again (every rate is >= 1 a minute)


def replica_name() -> str:
    """This process among the replicas: host, pid and a random part (a pid can come back)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _poller_key(bot_id: int) -> int:
    """The second advisory-lock key for a bot (an int4): the bot id folded into 31 bits."""
    return (POLLER_LOCK + bot_id) % 2_147_483_647


@contextmanager
def lazy_commit(connection: Any) -> Iterator[None]:
    """A transaction that does not wait for its commit to reach the disk (synchronous_commit off):
    for rate-limit buckets and counters, which a database crash may set back a little without
    harm. The inbox always waits: a stored update must survive a crash."""
    with connection.transaction():
        connection.execute("SET LOCAL synchronous_commit = off")
        yield


def open_shared(url: str, bot_id: int, settings: Settings) -> State:
    """The inbox, limits and stats in the database at `url` (migrated), sharing one connection pool."""
    missing = pending(url)  # DatabaseProblem when it cannot be reached
    if missing:
        raise DatabaseProblem(
            f"The database is not migrated ({', '.join(missing)} pending): run `python -m bot db migrate`."
        )
    inbox = PgInbox(url, bot_id, settings.inbox_lease_seconds)
    return State(
        inbox=inbox,
        limits=PgLimits(inbox, settings.user_rate_per_minute, settings.chat_rate_per_minute),
        stats=PgStats(inbox),
    )


class PgInbox:
    """The durable inbox in PostgreSQL (see the module doc); safe to use from several threads."""

    def __init__(self, url: str, bot_id: int, lease_seconds: float = 30.0, owner: str | None = None) -> None:
        if bot_id <= 0:
            raise ValueError(f"bot_id must be the bot's positive user id, got {bot_id!r}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds!r}")
        from psycopg_pool import ConnectionPool

        self.url = url
        self.bot_id = bot_id
        self.owner = owner or replica_name()
        self.lease_seconds = lease_seconds
        self.renew_every: float | None = lease_seconds / 3
        self.pool = ConnectionPool(
            url, min_size=1, max_size=POOL_SIZE, kwargs={"autocommit": True}, open=True, name="citebot-state"
        )
        self._moves_lock = threading.Lock()
        self._moves: dict[int, int] = {}
        self._poller: Any = None  # the connection holding the poller lock
        try:
            self._refresh_moves()
        except InboxError as exc:
            self.pool.close()
            raise DatabaseProblem(str(exc)) from None

    @contextmanager
    def _db(self, what: str) -> Iterator[Any]:
        """A pooled connection; psycopg errors as InboxError saying what failed."""
        import psycopg

        try:
            with self.pool.connection() as connection:
                yield connection
        except psycopg.Error as exc:
            raise InboxError(f"inbox in DATABASE_URL: cannot {what}: {str(exc).strip()}") from exc

    def store(self, updates: Iterable[Mapping[str, Any]]) -> list[int]:
        rows = [(int(u["update_id"]), json.dumps(u, ensure_ascii=False)) for u in updates]
        if not rows:
            return []
        with self._db("store updates") as connection:
            fresh = connection.execute(
                "INSERT INTO telegram_updates (bot_id, update_id, payload)"
                " SELECT %s, u.id, u.payload::jsonb FROM unnest(%s::bigint[], %s::text[]) AS u (id, payload)"
                " ON CONFLICT DO NOTHING RETURNING update_id",
                (self.bot_id, [r[0] for r in rows], [r[1] for r in rows]),
            ).fetchall()
        stored = {row[0] for row in fresh}
        return [r[0] for r in rows if r[0] in stored]

    def next_offset(self) -> int | None:
        with self._db("read the offset") as connection:
            (newest,) = connection.execute(
                "SELECT max(update_id) FROM telegram_updates WHERE bot_id = %s", (self.bot_id,)
            ).fetchone()
        return None if newest is None else int(newest) + 1

    def pending(self, limit: int = 1000) -> list[Entry]:
        """Updates not done that nobody holds: never claimed, or their lease ran out (or they are ours)."""
        with self._db("read pending updates") as connection:
            rows = connection.execute(
                "SELECT update_id, payload, attempts FROM telegram_updates"
                " WHERE bot_id = %s AND state = 'pending'"
                " AND (claimed_by IS NULL OR claimed_by = %s OR lease_until < now())"
                " ORDER BY update_id LIMIT %s",
                (self.bot_id, self.owner, limit),
            ).fetchall()
        return [Entry(int(update_id), payload, attempts) for update_id, payload, attempts in rows]

    def start(self, update_id: int) -> Entry | None:
        """Claim the update for this replica (a lease); None when it is done or another live replica has it."""
        with self._db("claim an update") as connection:
            row = connection.execute(
                "UPDATE telegram_updates SET attempts = attempts + 1, claimed_by = %(me)s,"
                " lease_until = now() + make_interval(secs => %(lease)s)"
                " WHERE bot_id = %(bot)s AND update_id = %(id)s AND state = 'pending'"
                " AND (claimed_by IS NULL OR claimed_by = %(me)s OR lease_until < now())"
                " RETURNING payload, attempts",
                {"me": self.owner, "lease": self.lease_seconds, "bot": self.bot_id, "id": update_id},
            ).fetchone()
        return None if row is None else Entry(update_id, row[0], row[1])

    def mark_done(self, update_id: int, state: str = "done") -> None:
        if state not in ("done", "skipped"):
            raise ValueError(f"state must be 'done' or 'skipped', got {state!r}")
        with self._db("mark an update done") as connection:
            connection.execute(
                "UPDATE telegram_updates SET state = %s, done_at = now(), lease_until = NULL"
                " WHERE bot_id = %s AND update_id = %s",
                (state, self.bot_id, update_id),
            )

    def heartbeat(self, update_ids: Sequence[int]) -> None:
        """Renew this replica's leases on the updates it is handling; learn the chat moves others saw."""
        if update_ids:
            with self._db("renew claims") as connection:
                connection.execute(
                    "UPDATE telegram_updates SET lease_until = now() + make_interval(secs => %s)"
                    " WHERE bot_id = %s AND claimed_by = %s AND state = 'pending' AND update_id = ANY(%s)",
                    (self.lease_seconds, self.bot_id, self.owner, list(update_ids)),
                )
        self._refresh_moves()

    def release(self, update_ids: Sequence[int]) -> None:
        """End this replica's claims on updates it stops without finishing: others take them at once."""
        if not update_ids:
            return
        with self._db("release claims") as connection:
            connection.execute(
                "UPDATE telegram_updates SET claimed_by = NULL, lease_until = NULL"
                " WHERE bot_id = %s AND claimed_by = %s AND state = 'pending' AND update_id = ANY(%s)",
                (self.bot_id, self.owner, list(update_ids)),
            )

    def prune(self, keep_seconds: float) -> int:
        with self._db("prune") as connection:
            # the newest entry stays whatever its age: it carries the getUpdates offset
            return connection.execute(
                "DELETE FROM telegram_updates WHERE bot_id = %(bot)s AND state != 'pending'"
                " AND done_at < now() - make_interval(secs => %(keep)s)"
                " AND update_id < (SELECT max(update_id) FROM telegram_updates WHERE bot_id = %(bot)s)",
                {"bot": self.bot_id, "keep": keep_seconds},
            ).rowcount

    def moved_to(self, chat_id: int) -> int | None:
        with self._moves_lock:
            return self._moves.get(chat_id)

    def remember_move(self, old_id: int, new_id: int) -> None:
        with self._moves_lock:
            self._moves[old_id] = new_id
        with self._db("remember a chat move") as connection:
            connection.execute(
                "INSERT INTO telegram_chat_moves (bot_id, old_id, new_id) VALUES (%s, %s, %s)"
                " ON CONFLICT (bot_id, old_id) DO UPDATE SET new_id = EXCLUDED.new_id, moved_at = now()",
                (self.bot_id, old_id, new_id),
            )

    def _refresh_moves(self) -> None:
        with self._db("read chat moves") as connection:
            rows = connection.execute(
                "SELECT old_id, new_id FROM telegram_chat_moves WHERE bot_id = %s", (self.bot_id,)
            ).fetchall()
        with self._moves_lock:
            self._moves.update((int(old), int(new)) for old, new in rows)

    def hold_polling(self) -> None:
        """Take the bot's poller lock for the life of this inbox (released when it closes or the process dies)."""
        if self._poller is not None:
            return
        connection = connect(self.url, autocommit=True)
        (held,) = connection.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, _poller_key(self.bot_id))
        ).fetchone()
        if not held:
            connection.close()
            raise PollerBusy(
                "Another bot process already polls Telegram for this bot with the same DATABASE_URL. "
                "Run one poller, or run several replicas in webhook mode (set WEBHOOK_URL)."
            )
        self._poller = connection

    def counts(self) -> dict[str, int]:
        """How many stored updates are in each state (for logs and tests)."""
        with self._db("count updates") as connection:
            rows = connection.execute(
                "SELECT state, count(*) FROM telegram_updates WHERE bot_id = %s GROUP BY state", (self.bot_id,)
            ).fetchall()
        return {state: int(n) for state, n in rows}

    def close(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None
        self.pool.close()


class PgLimits:
    """The per-user and per-chat leaky buckets in the database (bucket rules as limits.QuestionLimits).

    A database error lets the question through (logged): a limit is a guard, not a reason to
    leave a question unanswered.
    """

    def __init__(self, inbox: PgInbox, user_per_minute: int, chat_per_minute: int) -> None:
        if user_per_minute < 1 or chat_per_minute < 1:
            raise ValueError(f"rates must be at least 1 a minute, got {user_per_minute} and {chat_per_minute}")
        self._inbox = inbox
        self.user_per_minute = user_per_minute
        self.chat_per_minute = chat_per_minute
        self.dropped = 0  # questions dropped quietly after a notice, by this replica
        self._pruned_at = time.monotonic()

    async def verdict(self, user_id: int | None, chat_id: int | None) -> Verdict:
        verdict = await asyncio.to_thread(self._ask, user_id, chat_id, NOTICE_WINDOW)
        if verdict is Verdict.DROP:
            self.dropped += 1
        return verdict

    async def allow(self, user_id: int | None, chat_id: int | None) -> bool:
        return await asyncio.to_thread(self._ask, user_id, chat_id, None) is Verdict.ANSWER

    def _ask(self, user_id: int | None, chat_id: int | None, notice_window: float | None) -> Verdict:
        import psycopg

        try:
            with self._inbox.pool.connection() as connection, lazy_commit(connection):
                row = connection.execute(
                    "SELECT telegram_rate_verdict(%s, %s, %s, %s, %s, %s)",
                    (
                        self._inbox.bot_id,
                        user_id,
                        self.user_per_minute,
                        chat_id,
                        self.chat_per_minute,
                        notice_window,
                    ),
                ).fetchone()
                assert row is not None  # a function call returns one row
                if time.monotonic() - self._pruned_at > BUCKET_PRUNE_EVERY:
                    self._pruned_at = time.monotonic()
                    connection.execute(
                        "DELETE FROM telegram_rate_buckets WHERE bot_id = %s AND at < now() - %s::interval"
                        " AND (noticed_at IS NULL OR noticed_at < now() - %s::interval)",
                        (self._inbox.bot_id, BUCKET_IDLE, BUCKET_IDLE),
                    )
        except psycopg.Error as exc:
            log.warning("rate limits in DATABASE_URL unavailable, question let through: %s", str(exc).strip())
            return Verdict.ANSWER
        return Verdict(row[0])


class PgStats:
    """The /stats counters in the database, summed over the replicas."""

    def __init__(self, inbox: PgInbox) -> None:
        self._inbox = inbox

    def count_answers(self, n: int) -> None:
        """Add n answers (a database error is logged: the answers were given all the same)."""
        import psycopg

        if n <= 0:
            return
        try:
            with self._inbox.pool.connection() as connection, lazy_commit(connection):
                connection.execute(
                    "INSERT INTO telegram_counters (bot_id, name, value) VALUES (%s, 'answers', %s)"
                    " ON CONFLICT (bot_id, name) DO UPDATE SET value = telegram_counters.value + EXCLUDED.value",
                    (self._inbox.bot_id, n),
                )
        except psycopg.Error as exc:
            log.warning("could not count %d answers in DATABASE_URL: %s", n, str(exc).strip())

    def answers(self) -> int:
        with self._inbox.pool.connection() as connection:
            row = connection.execute(
                "SELECT value FROM telegram_counters WHERE bot_id = %s AND name = 'answers'", (self._inbox.bot_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])
