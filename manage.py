#!/usr/bin/env python3
"""Set everything up in .venv, then run the bot (`start`) or the test suite (`test`).

Safe to run again: the virtual environment is reused and dependencies are installed only
when pyproject.toml changed since the last install.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time
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


def stage(label: str, step: int, steps: int) -> float:
    """Say which step starts; returns its start time for `done`."""
    print(f"[{step}/{steps}] {label} ...", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"      done in {time.monotonic() - started:.0f} s", flush=True)


def setup() -> None:
    """Create .venv and install the project with its build and test extras (torch pinned, CPU build).

    Each step says what it does and, when it ends, how long it took; on a terminal pip shows
    its own progress (what it collects, download bars), elsewhere it is quiet.
    """
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("setting up .venv (the first run downloads ~1 GB and takes a few minutes)", flush=True)
    if not PYTHON.exists():
        started = stage("creating .venv", 1, 3)
        venv.EnvBuilder(with_pip=True).create(VENV)
        done(started)
    pip = [PYTHON, "-m", "pip", "install", "--disable-pip-version-check"]
    if not sys.stdout.isatty():
        pip.append("-q")
    # torch first and pinned, so nothing pulls a multi-GB CUDA build
    started = stage(f"installing {torch_pin()} (the largest download)", 2, 3)
    run(*pip, torch_pin())
    done(started)
    started = stage("installing citebot and its other dependencies", 3, 3)
    run(*pip, "-e", ".[build,test]")
    done(started)
    STAMP.write_text(wanted)


# What `test` runs after the test suite: the linter and the type checker (from the test extra).
CHECKS = (
    ["ruff", "check", "bot", "tests", "benchmarks", "manage.py"],
    ["ruff", "format", "--check", "bot", "tests", "benchmarks", "manage.py"],
    ["mypy", "bot"],
)


def test(pytest_args: list[str]) -> int:
    """The test suite, then every check; the first that fails decides the exit code."""
    status = subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT).returncode
    if status != 0:
        return status
    for check in CHECKS:
        print(f"$ {' '.join(check)}", flush=True)
        status = subprocess.run([str(PYTHON), "-m", *check], cwd=ROOT).returncode
        if status != 0:
            return status
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=f"python3 {Path(__file__).name}",
        description="Set up .venv (only when pyproject.toml changed), then run the bot or the tests.",
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="start",
        choices=("start", "test", "setup"),
        help="start: build the index if needed, then serve Telegram (TELEGRAM_BOT_TOKEN set) or open "
        "the terminal chat (default); test: run the test suite (pytest), then ruff and mypy; "
        "setup: only set up .venv",
    )
    parser.add_argument(
        "args", nargs=argparse.REMAINDER, help="passed on: to `python -m bot start` or to pytest (e.g. -x -q)"
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    options = parse(argv)  # --help exits 0; an unknown command exits 2 with the usage
    command, argv = options.command, [options.command, *options.args]
    try:
        setup()
    except subprocess.CalledProcessError as exc:  # pip said why above; say what to do, without a traceback
        print(
            f"Error: setting up .venv failed (pip exit code {exc.returncode}, its messages are above): "
            f"check the network connection and disk space, then run this again",
            file=sys.stderr,
        )
        return 1
    if command == "setup":
        return 0
    if command == "test":
        return test(argv[1:])
    # `start` builds the index when it is missing or stale, then serves Telegram when
    # TELEGRAM_BOT_TOKEN is set and opens the terminal chat otherwise.
    os.execv(str(PYTHON), [str(PYTHON), "-m", "bot", "start", *argv[1:]])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
