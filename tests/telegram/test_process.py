"""`python -m bot run` as a process: answers over the fake server, stops on SIGTERM, no token in output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import SMALL_ARTICLE

from .conftest import TOKEN
from .fake_api import FakeBotApi
from .updates import ADMIN_ID, USER_ID, Sender

ROOT = Path(__file__).resolve().parents[2]


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the bot process (no inherited bot settings, no .env in its folder)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "ADMIN_IDS"))}
    return {**keep, "PYTHONPATH": str(ROOT), "CORPUS_DIR": str(tmp_path / "corpus"),
            "INDEX_DIR": str(tmp_path / "index"), "LOG_LEVEL": "INFO", **extra}


def run_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("token", "expected"),
    [("", "TELEGRAM_BOT_TOKEN is not set"), ("not a token", "TELEGRAM_BOT_TOKEN is malformed")],
)
def test_missing_or_malformed_token_is_one_line(tmp_path: Path, token: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=tmp_path, env=bot_env(tmp_path, TELEGRAM_BOT_TOKEN=token),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert token == "" or token not in result.stderr


def test_run_answers_over_http_and_stops_on_sigterm(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour.md").write_text(SMALL_ARTICLE, encoding="utf-8")
    api = FakeBotApi(TOKEN).start()
    env = bot_env(
        tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=api.base_url,
        TELEGRAM_BASE_FILE_URL=api.base_file_url, ADMIN_IDS=f"{ADMIN_ID}, 999",
    )
    Sender(api).private("How many visitors are expected at the festival?", user_id=USER_ID)  # waits for the bot
    process = run_bot(tmp_path, env)
    try:
        [reply] = api.wait_for("sendMessage", timeout=60)
        assert "40,000" in reply.params["text"] and reply.params["chat_id"] == USER_ID
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
        assert time.monotonic() - stopping < 8
        assert process.returncode == 0, err[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        api.stop()
    secret = TOKEN.split(":")[1]
    assert secret not in out and secret not in err
    assert "question answered in private chat" in err
    assert "Traceback" not in err
