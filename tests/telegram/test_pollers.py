"""One poller per bot: Telegram ends the older of two getUpdates calls with 409 Conflict (and so
does the fake Bot API); a second `python -m bot run` in polling mode stops with a clear message
and the first one goes on answering."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import TOKEN, Running
from .fake_api import POLL_CONFLICT, FakeBotApi
from .test_process import bot_env
from .updates import USER_ID, Sender

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "How many visitors are expected at the festival?"


def get_updates(api: FakeBotApi, timeout: int) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{api.base_url}{TOKEN}/getUpdates",
        data=json.dumps({"timeout": timeout}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout + 5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_the_fake_bot_api_ends_the_older_of_two_polls_with_409(fake_api: FakeBotApi) -> None:
    answers: list[tuple[int, dict]] = []
    older = threading.Thread(target=lambda: answers.append(get_updates(fake_api, 5)))
    older.start()
    while not fake_api.calls_of("getUpdates"):
        time.sleep(0.01)
    time.sleep(0.3)  # the older call is recorded, then waits for updates
    newer = get_updates(fake_api, 0)
    older.join(10)
    assert newer == (200, {"ok": True, "result": []})
    assert answers == [(409, {"ok": False, "error_code": 409, "description": POLL_CONFLICT})]


async def test_a_second_poller_stops_with_a_clear_message_and_the_first_goes_on(
    running: Running, tmp_path: Path, news_service, caplog: pytest.LogCaptureFixture
) -> None:
    api = running.api
    while len(api.calls_of("getUpdates")) < 2:  # the first poll completed: this bot is the poller
        await asyncio.sleep(0.05)
    second = tmp_path / "second"
    shutil.copytree(news_service.settings.corpus_dir, second / "corpus")
    shutil.copytree(news_service.settings.index_dir, second / "index")
    env = bot_env(
        second,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=api.base_url,
        TELEGRAM_BASE_FILE_URL=api.base_file_url,
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "bot", "run"],
        cwd=second,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert "Another process is already polling Telegram for this bot (409 Conflict" in last
    assert "webhook mode" in last and "Traceback" not in result.stderr
    assert TOKEN.split(":")[1] not in result.stderr
    Sender(api).private(QUESTION)
    assert "40,000" in (await running.reply(chat_id=USER_ID))["text"]  # the first bot still answers
    assert "another process polls Telegram for this bot" in caplog.text  # it met the newcomer's 409 and polled on
