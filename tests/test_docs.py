"""The README's commands run as written, and every path it names exists in a clone."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
SHELL_BLOCKS = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
COMMANDS = [line.split("  #")[0].strip() for block in SHELL_BLOCKS for line in block.splitlines() if line.strip()]
BOT_COMMANDS = [c for c in COMMANDS if ".venv/bin/python -m bot" in c]


def test_the_readme_has_the_two_commands_and_is_short():
    assert "python3 manage.py start" in COMMANDS and "python3 manage.py test" in COMMANDS
    assert len(README.encode("utf-8")) < 12 * 1024


def test_every_path_the_readme_names_exists():
    named = set(re.findall(r"`((?:bot|benchmarks|tests|corpus)/[\w./-]+)`", README))
    named |= set(re.findall(r"\]\(((?!https?:)[^)#]+)\)", README))
    missing = [p for p in sorted(named) if not (ROOT / p).exists()]
    assert named and missing == []


@pytest.fixture(scope="module")
def env(news_service, tmp_path_factory) -> dict[str, str]:
    """The settings the README's commands run with: the bundled corpus, an index already built."""
    index = tmp_path_factory.mktemp("docs") / "index"
    shutil.copytree(news_service.settings.index_dir, index)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    environment.update(CORPUS_DIR=str(ROOT / "corpus"), INDEX_DIR=str(index), HF_HUB_OFFLINE="1")
    return environment


def shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = command.replace(".venv/bin/python", f"'{sys.executable}'")
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", BOT_COMMANDS)
def test_each_usage_command_runs(command, env):
    result = shell(command, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "Traceback" not in result.stderr


def test_the_example_answer_is_what_the_bot_says(env):
    result = shell('.venv/bin/python -m bot ask "Where did Kim step onto a red carpet?"', env)
    assert "Khasan rail station" in result.stdout.splitlines()[0] + result.stdout


def test_start_through_a_short_piped_chat(env):
    """`python3 manage.py start` without a token: the terminal chat, here with one piped question."""
    stamp = ROOT / ".venv" / ".citebot-installed"
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not stamp.exists() or stamp.read_text().strip() != wanted:  # it would install first
        pytest.skip("manage.py has not set up .venv for this pyproject.toml (python3 manage.py setup)")
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "start"],
        input="Who is Geng Shuang?\n",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Geng Shuang" in result.stdout
