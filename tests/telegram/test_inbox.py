"""The durable inbox: stored before confirmed, answered from the store, pruned, moves remembered."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.inbox import InboxError, SqliteInbox

from .conftest import start_running
from .fake_api import FakeBotApi
from .updates import USER_ID, Sender

BOT = 123456
QUESTION = "How many visitors are expected at the festival?"


def update(n: int) -> dict:
    return {"update_id": n, "message": {"message_id": n, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"}}


def test_what_was_stored_and_not_done_is_pending_after_reopening(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", BOT)
    assert inbox.next_offset() is None
    assert inbox.store([update(5), update(6), update(7)]) == [5, 6, 7]
    assert inbox.store([update(6)]) == []  # fetched again: stored once
    assert inbox.start(5) is not None
    inbox.mark_done(5)
    assert inbox.start(5) is None  # done: never handled again
    inbox.close()
    again = SqliteInbox(tmp_path / "inbox.sqlite3", BOT)
    assert again.next_offset() == 8
    assert [(e.update_id, e.attempts) for e in again.pending()] == [(6, 0), (7, 0)]
    assert again.pending()[0].payload == update(6)
    assert SqliteInbox(tmp_path / "inbox.sqlite3", BOT + 1).pending() == []  # another bot's inbox


def test_the_file_is_in_wal_mode_with_normal_sync(tmp_path: Path) -> None:
    SqliteInbox(tmp_path / "inbox.sqlite3", BOT).close()
    with sqlite3.connect(tmp_path / "inbox.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_old_done_entries_are_pruned_but_the_offset_stays(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", BOT)
    inbox.store([update(1), update(2), update(3)])
    inbox.mark_done(1)
    inbox.mark_done(3)
    time.sleep(0.01)
    assert inbox.prune(keep_seconds=0.001) == 1  # 1 goes; 2 is pending; 3 carries the offset
    assert inbox.next_offset() == 4 and [e.update_id for e in inbox.pending()] == [2]
    assert inbox.prune(keep_seconds=3600) == 0


def test_chat_moves_are_remembered_across_restarts(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "inbox.sqlite3", BOT)
    inbox.remember_move(-42, -10042)
    inbox.close()
    assert SqliteInbox(tmp_path / "inbox.sqlite3", BOT).moved_to(-42) == -10042


def test_a_bad_bot_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="-1"):
        SqliteInbox(tmp_path / "inbox.sqlite3", -1)


class FailingInbox(SqliteInbox):
    """An inbox whose disk is full for the first `failures` stores."""

    failures = 3

    def store(self, updates):  # type: ignore[no-untyped-def]
        updates = list(updates)
        if updates and self.failures:
            self.failures -= 1
            raise InboxError("cannot store updates: database or disk is full")
        return super().store(updates)


async def test_an_update_that_could_not_be_stored_is_not_confirmed(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bot.telegram.app as app_module

    monkeypatch.setattr(app_module, "SqliteInbox", FailingInbox)
    monkeypatch.setattr("bot.telegram.polling.POLL_SECONDS", 1)
    monkeypatch.setattr("bot.telegram.polling.STORE_RETRY", 0.2)
    FailingInbox.failures = 1
    async with start_running(tg_settings, tg_service, fake_api) as running:
        Sender(fake_api).private(QUESTION)
        reply = await running.reply(chat_id=USER_ID)
        assert "40,000" in reply["text"]
        polls = [c.params.get("offset") for c in fake_api.calls_of("getUpdates")]
    # the batch that could not be stored was fetched again with the same offset, then confirmed
    assert polls.count(None) >= 2
    assert len(running.sent()) == 1
