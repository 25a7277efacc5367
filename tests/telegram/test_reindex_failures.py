"""Reindex under load and failure: the previous index keeps serving, the admin is told, and no
half-written build folder is left behind; a damaged index at start-up is rebuilt, never half-loaded."""

from __future__ import annotations

import errno
import html
import multiprocessing
import sys
from collections import Counter
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import faiss
import pytest

from bot.index import CURRENT, VECTORS, BuildReport
from bot.lifecycle import IndexJob
from bot.service import QAService
from bot.settings import Settings
from tests.fakes import FakeEncoder

from .conftest import Running, start_running
from .fake_api import FakeBotApi
from .test_admin import NEW_ARTICLE, slow_service_with_new_article
from .updates import ADMIN_ID, GROUP, USER_ID, user

FAILED = "Reindex failed"
STILL_SERVING = "still answering from the previous index"


def builds(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.iterdir() if p.name.startswith("build-"))


def current(index_dir: Path) -> str:
    return (index_dir / CURRENT).read_text(encoding="utf-8").strip()


async def reindex_fails_and_old_index_serves(running: Running, reason: str) -> None:
    """/reindex by the admin fails with `reason`; the same index answers; only its build folder is left."""
    index_dir = running.settings.index_dir
    index, pointer = running.service.answerer.index, current(index_dir)
    running.send.private("/reindex", user_id=ADMIN_ID)
    report = html.unescape((await running.reply(chat_id=ADMIN_ID))["text"])
    assert FAILED in report and STILL_SERVING in report and reason in report
    assert "Traceback" not in report
    assert running.service.answerer.index is index
    assert current(index_dir) == pointer and builds(index_dir) == [pointer]
    running.send.private("When does the festival end?")
    assert "Sunday" in (await running.reply(chat_id=USER_ID))["text"]


async def test_unreadable_article_fails_the_rebuild(running: Running, corpus_dir: Path) -> None:
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    (corpus_dir / "wire.md").symlink_to(corpus_dir / "gone" / "wire.md")  # a real read error
    await reindex_fails_and_old_index_serves(running, "wire.md: cannot be read")


async def test_empty_corpus_fails_the_rebuild(running: Running, corpus_dir: Path) -> None:
    for article in corpus_dir.iterdir():
        article.unlink()
    await reindex_fails_and_old_index_serves(running, "No article could be indexed")


async def test_disk_full_while_saving_fails_the_rebuild(
    running: Running, corpus_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(index: Any, path: str) -> None:
        Path(path).write_bytes(b"\0" * 100)  # part of the file was written
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(faiss, "write_index", disk_full)
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    await reindex_fails_and_old_index_serves(running, "No space left on device")


class ChildProcessService(QAService):
    """Rebuilds in a child process like the default service; answers with the fake encoder."""

    def _build(self, job: IndexJob, progress: Any) -> BuildReport | None:
        return self._builds.run(job, progress)


async def test_rebuild_process_killed_half_way(
    tg_settings: Settings,
    tg_service: QAService,
    fake_api: FakeBotApi,
    corpus_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index_dir = tg_settings.index_dir
    child = tmp_path / "killed-child.sh"  # writes part of a build, then is killed
    child.write_text(
        "#!/bin/sh\n"
        f"mkdir -p '{index_dir}/build-halfway' && head -c 4096 /dev/zero > '{index_dir}/build-halfway/{VECTORS}'\n"
        "kill -9 $$\n"
    )
    child.chmod(0o755)
    service = ChildProcessService(tg_settings, encoder_factory=FakeEncoder)
    service.open(rebuild=False)
    (corpus_dir / "bridge.md").write_text(NEW_ARTICLE, encoding="utf-8")
    resource_tracker.ensure_running()  # with the real Python, before the child's executable is swapped
    multiprocessing.set_executable(str(child))
    try:
        async with start_running(tg_settings, service, fake_api) as running:
            await reindex_fails_and_old_index_serves(running, "exit code -9")
    finally:
        multiprocessing.set_executable(sys.executable)


async def test_questions_during_a_reindex_are_all_answered_once(
    tg_settings: Settings, fake_api: FakeBotApi, corpus_dir: Path
) -> None:
    service = slow_service_with_new_article(tg_settings, corpus_dir)
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private("/reindex", user_id=ADMIN_ID)
        await running.reply("sendChatAction", chat_id=ADMIN_ID)  # the rebuild has started
        asked = []
        for n in range(24):
            chat = dict(GROUP, id=GROUP["id"] - n % 4)
            message = running.send.message(chat, "/ask When does the festival end?", user(USER_ID + n))
            running.api.push("message", message)
            asked.append((chat["id"], message["message_id"]))
        replies = await running.replies(count=len(asked) + 1)
        report = next(r for r in replies if r["chat_id"] == ADMIN_ID)
        assert "Added: bridge.md" in report["text"]
        answers = [r for r in replies if r["chat_id"] != ADMIN_ID]
        assert all("Sunday" in r["text"] for r in answers)
        await running.quiet()
    delivered = Counter(
        (c.params["chat_id"], c.params["reply_parameters"]["message_id"])
        for c in fake_api.calls_of("sendMessage")
        if c.params["chat_id"] != ADMIN_ID
    )
    assert delivered == Counter(dict.fromkeys(asked, 1))


async def test_damaged_index_at_start_up_is_rebuilt_not_half_loaded(
    tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi
) -> None:
    index_dir = tg_settings.index_dir
    damaged = index_dir / current(index_dir) / VECTORS
    damaged.write_bytes(damaged.read_bytes()[:200])  # truncated
    service = QAService(tg_settings, encoder_factory=FakeEncoder)
    report = service.open()
    assert report is not None and report.sentences == len(tg_service.answerer.index.sentences)
    assert builds(index_dir) == [current(index_dir)] and damaged.parent.name != current(index_dir)
    async with start_running(tg_settings, service, fake_api) as running:
        running.send.private("How many visitors are expected at the festival?")
        assert "40,000" in (await running.reply(chat_id=USER_ID))["text"]
