"""The bot's state in PostgreSQL (DATABASE_URL), shared by replicas: against the suite's own server.

Two objects over one database stand for two replicas: an update is stored and answered once,
a dead replica's claim runs out and is taken over, a live one keeps its claims; rate limits,
stats and chat moves hold across replicas; one poller per bot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.db import DatabaseProblem, migrate
from bot.service import QAService
from bot.settings import Settings
from bot.telegram.app import build_application, open_state, serving
from bot.telegram.inbox import PollerBusy
from bot.telegram.limits import Verdict
from bot.telegram.shared import PgInbox, PgLimits, PgStats

from .conftest import TOKEN, start_running
from .fake_api import FakeBotApi
from .updates import ADMIN_ID, USER_ID, Sender

BOT = 123456
QUESTION = "How many visitors are expected at the festival?"


def update(n: int, chat: int = 1) -> dict:
    message = {"message_id": n, "date": 0, "chat": {"id": chat, "type": "private"}, "text": "hi"}
    return {"update_id": n, "message": message}


@pytest.fixture
def migrated(database_url: str) -> str:
    migrate(database_url)
    return database_url


@pytest.fixture
def replicas(migrated: str) -> Iterator[tuple[PgInbox, PgInbox]]:
    """Two replicas' inboxes over one database, with short leases."""
    a = PgInbox(migrated, BOT, lease_seconds=2.0, owner="replica-a")
    b = PgInbox(migrated, BOT, lease_seconds=2.0, owner="replica-b")
    yield a, b
    a.close()
    b.close()


def test_an_update_is_stored_once_and_handled_by_one_replica(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    assert a.next_offset() is None
    assert a.store([update(5), update(6)]) == [5, 6]
    assert b.store([update(6), update(7)]) == [7]  # Telegram posted 6 again, to the other replica
    assert a.next_offset() == b.next_offset() == 8
    claimed = a.start(6)
    assert claimed is not None and claimed.payload == update(6) and claimed.attempts == 1
    assert b.start(6) is None  # a holds it
    assert [e.update_id for e in b.pending()] == [5, 7]  # what b may take
    a.mark_done(6)
    assert a.start(6) is None and b.start(6) is None  # done: never handled again
    assert a.counts() == {"pending": 2, "done": 1}


def test_a_dead_replicas_claims_run_out_and_are_taken_over(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    a.store([update(1), update(2)])
    assert a.start(1) is not None and a.start(2) is not None  # leases until t = 2 s
    time.sleep(1.0)
    a.heartbeat([2])  # a still handles 2 (now until t = 3 s); it stopped handling 1 (it died, say)
    time.sleep(1.3)  # 1's lease has run out, 2's has not
    assert [e.update_id for e in b.pending()] == [1]
    taken = b.start(1)
    assert taken is not None and taken.attempts == 2  # counted: a crash loop is given up after a few
    assert b.start(2) is None
    assert a.start(1) is None  # a came back: 1 is b's now
    time.sleep(1.0)  # nobody renews 2 now
    assert b.start(2) is not None


def test_a_replica_that_stops_releases_what_it_did_not_finish(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    a.store([update(1), update(2)])
    assert a.start(1) is not None and a.start(2) is not None
    b.release([1, 2])  # not b's to release
    assert b.start(1) is None
    a.release([1])
    assert [e.update_id for e in b.pending()] == [1]  # at once, not after the lease
    assert b.start(1) is not None and b.start(2) is None


def test_old_done_entries_are_pruned_but_the_offset_stays(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    a.store([update(1), update(2), update(3)])
    a.mark_done(1)
    b.mark_done(3)
    time.sleep(0.05)
    assert a.prune(keep_seconds=0.01) == 1
    assert b.next_offset() == 4 and [e.update_id for e in b.pending()] == [2]


def test_a_chat_move_one_replica_learns_reaches_the_others(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    a.remember_move(-100, -1001234)
    assert a.moved_to(-100) == -1001234
    b.heartbeat([])
    assert b.moved_to(-100) == -1001234
    fresh = PgInbox(a.url, BOT, owner="replica-c")
    assert fresh.moved_to(-100) == -1001234
    fresh.close()


def test_one_poller_per_bot(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    a.hold_polling()
    with pytest.raises(PollerBusy, match="webhook mode"):
        b.hold_polling()
    other_bot = PgInbox(a.url, BOT + 1)
    other_bot.hold_polling()  # another bot polls on its own
    other_bot.close()
    a.close()  # the lock goes with the process (its connection)
    b.hold_polling()


async def test_rate_limits_hold_across_replicas(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    first, second = PgLimits(a, user_per_minute=3, chat_per_minute=100), PgLimits(b, 3, 100)
    verdicts = [
        await first.verdict(USER_ID, USER_ID),
        await second.verdict(USER_ID, USER_ID),
        await first.verdict(USER_ID, USER_ID),
        await second.verdict(USER_ID, USER_ID),  # the 4th in a minute, on either replica
        await first.verdict(USER_ID, USER_ID),
    ]
    assert verdicts == [Verdict.ANSWER] * 3 + [Verdict.NOTICE, Verdict.DROP]  # told once, then quiet
    assert first.dropped == 1
    assert await second.verdict(USER_ID + 1, USER_ID + 1) is Verdict.ANSWER  # someone else
    assert not await second.allow(USER_ID, None)  # inline queries count against the user too


async def test_a_chat_limit_counts_every_member_on_every_replica(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    group = -1005
    first, second = PgLimits(a, 100, chat_per_minute=2), PgLimits(b, 100, chat_per_minute=2)
    assert await first.verdict(1, group) is Verdict.ANSWER
    assert await second.verdict(2, group) is Verdict.ANSWER
    assert await first.verdict(3, group) is Verdict.NOTICE  # user 3 is told
    assert await second.verdict(4, group) is Verdict.NOTICE  # and so is user 4: notices go to the asker
    assert await second.verdict(3, group) is Verdict.DROP
    assert await first.verdict(5, None) is Verdict.ANSWER  # a button press in no chat: the user's own limit


def test_stats_sum_every_replica(replicas: tuple[PgInbox, PgInbox]) -> None:
    a, b = replicas
    PgStats(a).count_answers(3)
    PgStats(b).count_answers(2)
    assert PgStats(a).answers() == PgStats(b).answers() == 5
    other_bot = PgInbox(a.url, BOT + 1)
    assert PgStats(other_bot).answers() == 0  # another bot's counter
    other_bot.close()


def test_an_unmigrated_database_is_refused_with_the_command_to_run(database_url: str, fake_settings: Settings) -> None:
    settings = fake_settings.model_copy(update={"database_url": SecretStr(database_url)})
    with pytest.raises(DatabaseProblem, match="python -m bot db migrate"):
        open_state(settings, TOKEN)


@pytest.fixture
def pg_settings(tg_settings: Settings, migrated: str) -> Settings:
    return tg_settings.model_copy(update={"database_url": SecretStr(migrated)})


async def test_the_bot_answers_from_the_shared_inbox_and_counts_in_the_database(
    pg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    async with start_running(pg_settings, tg_service, fake_api) as running:
        Sender(fake_api).private(QUESTION)
        reply = await running.reply(chat_id=USER_ID)
        assert "40,000" in reply["text"]
        Sender(fake_api).private("/stats", user_id=ADMIN_ID)
        stats = await running.reply(chat_id=ADMIN_ID)
        assert "Questions answered: 1" in stats["text"]
        inbox = running.app.bot.inbox
        assert isinstance(inbox, PgInbox)
        await running.replies(count=2)
        await running.feed.drained()
        assert inbox.counts() == {"done": 2}
    assert not (pg_settings.index_dir / "inbox.sqlite3").exists()  # nothing in the embedded inbox


async def test_a_second_poller_on_the_same_database_refuses_to_start(
    pg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    async with start_running(pg_settings, tg_service, fake_api) as running:
        second = build_application(pg_settings, tg_service)
        try:
            with pytest.raises(PollerBusy, match="already polls Telegram for this bot"):
                async with serving(pg_settings, second):
                    pass
        finally:
            second.bot.inbox.close()
        Sender(fake_api).private(QUESTION)  # the first one goes on
        assert "40,000" in (await running.reply(chat_id=USER_ID))["text"]


def test_the_database_password_is_a_secret_of_the_logs(tg_settings: Settings) -> None:
    from bot.telegram.logs import RedactSecrets, secrets_of

    for url in ("postgresql://citebot:pa%24sw0rd-x@db.example.com/citebot", "host=db password=pa$sw0rd-x dbname=c"):
        settings = tg_settings.model_copy(update={"database_url": SecretStr(url)})
        line = RedactSecrets(secrets_of(settings)).redact(f"Cannot connect to {url}: pa$sw0rd-x refused")
        assert "sw0rd" not in line and "[REDACTED]" in line
