"""`python -m bot run` as a process: answers over the fake server, stops on SIGTERM, no token in output."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.index import SentenceIndex
from tests.conftest import SMALL_ARTICLE

from .conftest import TOKEN
from .fake_api import FakeBotApi
from .updates import ADMIN_ID, USER_ID, Sender

ROOT = Path(__file__).resolve().parents[2]


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the bot process (no inherited bot settings, no .env in its folder)."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "ADMIN_IDS"))}
    return {
        **keep,
        "PYTHONPATH": str(ROOT),
        "CORPUS_DIR": str(tmp_path / "corpus"),
        "INDEX_DIR": str(tmp_path / "index"),
        "LOG_LEVEL": "INFO",
        **extra,
    }


def run_bot(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    ("token", "expected"),
    [("", "TELEGRAM_BOT_TOKEN is not set"), ("not a token", "TELEGRAM_BOT_TOKEN is malformed")],
)
def test_missing_or_malformed_token_is_one_line(tmp_path: Path, token: str, expected: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        cwd=tmp_path,
        env=bot_env(tmp_path, TELEGRAM_BOT_TOKEN=token),
        capture_output=True,
        text=True,
        timeout=60,
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
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=api.base_url,
        TELEGRAM_BASE_FILE_URL=api.base_file_url,
        ADMIN_IDS=f"{ADMIN_ID}, 999",
    )
    Sender(api).private("How many visitors are expected at the festival?", user_id=USER_ID)  # waits for the bot
    process = run_bot(tmp_path, env)
    try:
        [reply] = api.wait_for("sendMessage", timeout=60)
        assert "40,000" in reply.params["text"] and reply.params["chat_id"] == USER_ID
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
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


def build_processes(pid: int) -> list[int]:
    """The index build processes (multiprocessing spawn children) of process `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                    found.append(int(child))
            except FileNotFoundError:
                pass
    return found


def test_sigterm_during_a_reindex_ends_the_build_at_once_and_keeps_the_old_index(tmp_path: Path, news_service) -> None:
    """The rebuild's child process is killed, the bot exits without waiting for it, the old index stays."""
    shutil.copytree(news_service.settings.corpus_dir, tmp_path / "corpus")
    shutil.copytree(news_service.settings.index_dir, tmp_path / "index")  # index and ONNX export, as built
    before = (tmp_path / "index" / "CURRENT").read_text(encoding="utf-8")
    # far more to embed than the time the bot is given before the signal
    sentences = " ".join(
        f"Report {n} says the zorblax count rose to {n * 7} in district {n % 97}." for n in range(6000)
    )
    api = FakeBotApi(TOKEN).start()
    env = bot_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_BASE_URL=api.base_url,
        TELEGRAM_BASE_FILE_URL=api.base_file_url,
        ADMIN_IDS=str(ADMIN_ID),
    )
    process = run_bot(tmp_path, env)
    try:
        api.wait_for("getUpdates", timeout=120)
        (tmp_path / "corpus" / "huge.md").write_text(f"# Zorblax reports\n\n{sentences}\n", encoding="utf-8")
        Sender(api).private("/reindex", user_id=ADMIN_ID)
        children: list[int] = []
        while not children and process.poll() is None:
            time.sleep(0.05)
            children = build_processes(process.pid)
        [child] = children
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        api.stop()
    assert not Path(f"/proc/{child}").exists()  # the build process is gone, not orphaned
    # the build never finished: the old index is the current one, and it does not know the new article
    assert (tmp_path / "index" / "CURRENT").read_text(encoding="utf-8") == before
    assert "huge.md" not in SentenceIndex.load(tmp_path / "index").articles
    assert f"stopping the index build process {child}" in err
    assert "Traceback" not in err
