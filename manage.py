#!/usr/bin/env python3
"""Set everything up in .venv, then run the bot (`start`) or the test suite (`test`).

Safe to run again: the virtual environment is reused and dependencies are installed only
when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".citebot-installed"


def run(*args: str | Path) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True)


def torch_pin() -> str:
    """The torch requirement of the `build` extra in pyproject.toml (the one place it is pinned)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = [r for r in project["optional-dependencies"]["build"] if re.match(r"torch\b", r)]
    if len(pins) != 1:
        raise SystemExit(f"pyproject.toml: expected one torch requirement in the build extra, found {pins}")
    return pins[0]


def setup() -> None:
    """Create .venv and install the project with its build and test extras (torch pinned, CPU build)."""
    if not PYTHON.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("installing dependencies into .venv (first run takes a few minutes) ...", flush=True)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    # torch first and pinned, so nothing pulls a multi-GB CUDA build
    run(*pip, torch_pin())
    run(*pip, "-e", ".[build,test]")
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    if command not in ("start", "test", "setup"):
        print(f"usage: python3 {Path(__file__).name} start|test|setup [args]", file=sys.stderr)
        return 2
    setup()
    if command == "setup":
        return 0
    if command == "test":
        return subprocess.run([str(PYTHON), "-m", "pytest", *argv[1:]], cwd=ROOT).returncode
    # `start` builds the index when it is missing or stale, then serves Telegram when
    # TELEGRAM_BOT_TOKEN is set and opens the terminal chat otherwise.
    os.execv(str(PYTHON), [str(PYTHON), "-m", "bot", "start", *argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
