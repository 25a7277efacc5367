"""A crash loses no question: SIGKILL at a random moment of a 200-question burst, then restart.

The bot runs as a real process against the fake Bot API; the fake server keeps the updates
it handed out until a getUpdates offset confirms them, as Telegram does.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.conftest import SMALL_ARTICLE

from .conftest import TOKEN
from .fake_api import FakeBotApi
from .updates import USER_ID, Sender

ROOT = Path(__file__).resolve().parents[2]
BURST = 200


def start_bot(tmp_path: Path, api: FakeBotApi, log_name: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "ADMIN_IDS"))}
    env.update(
        PYTHONPATH=os.environ.get("CITEBOT_CHILD_PYTHONPATH", str(ROOT)),
        CORPUS_DIR=str(tmp_path / "corpus"),
        INDEX_DIR=str(tmp_path / "index"),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=api.base_url,
        TELEGRAM_BASE_FILE_URL=api.base_file_url,
        LOG_LEVEL="INFO",
        USER_RATE_PER_MINUTE="10",
    )
    log = open(tmp_path / log_name, "wb")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.telegram.bot_process"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def replies_per_chat(api: FakeBotApi) -> Counter[int]:
    return Counter(c.params["chat_id"] for c in api.calls_of("sendMessage") if c.error is None)


def test_sigkill_mid_burst_then_restart_answers_every_question(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "harbour.md").write_text(SMALL_ARTICLE, encoding="utf-8")
    api = FakeBotApi(TOKEN).start()
    sender = Sender(api)
    users = [USER_ID + n for n in range(BURST)]
    kill_after = random.Random(os.environ.get("CRASH_SEED")).randint(0, BURST - 20)
    for user_id in users:  # the burst waits at "Telegram" for the bot to start
        sender.private("How many visitors are expected at the festival?", user_id=user_id)
    process = start_bot(tmp_path, api, "first.log")
    try:
        if kill_after:
            api.wait_for("sendMessage", timeout=60, count=kill_after)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        before = replies_per_chat(api)
        process = start_bot(tmp_path, api, "second.log")
        api.wait_for(
            "sendMessage",
            lambda c: c.params["chat_id"] in users,
            timeout=90,
            count=BURST - len(before) + sum(before.values()),
        )
        api.idle(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        api.stop()
    answered = replies_per_chat(api)
    lost = [u for u in users if not answered[u]]
    duplicates = sum(n - 1 for n in answered.values() if n > 1)
    print(f"killed after {sum(before.values())} replies; lost {len(lost)}, duplicates {duplicates}")
    assert not lost, f"{len(lost)} of {BURST} questions never answered"
    assert duplicates <= 5, f"{duplicates} answers sent twice (only replies in flight at the kill may be)"
