"""Lean serving: a process without the build dependencies answers from a built index, and asked
to build, says in one line what to install."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

BUILD_ONLY = ("torch", "sentence_transformers", "transformers", "onnx", "bm25s", "pysbd")


def run_without_build_extra(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m bot ARGS` in a process where the build dependencies cannot be imported."""
    code = (
        "import sys\n"
        f"for name in {BUILD_ONLY!r}:\n"
        "    sys.modules[name] = None  # importing it raises ImportError, as if not installed\n"
        f"sys.argv = ['bot', *{list(args)!r}]\n"
        "from bot.cli import main\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_serving_only_install_answers_and_asks_for_the_build_extra_to_build(news_service, tmp_path: Path):
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(news_service.settings.corpus_dir, corpus)
    shutil.copytree(news_service.settings.index_dir, index)  # index and ONNX export, as built
    where = ["--corpus-dir", str(corpus), "--index-dir", str(index)]

    done = run_without_build_extra(*where, "ask", "--json", "Where did Kim step onto a red carpet?")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["answered"] and answer["citations"]

    (corpus / "tram.md").write_text("# Tram line opens\n\nThe new tram line opened on Tuesday.\n", encoding="utf-8")
    done = run_without_build_extra(*where, "index")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'citebot[build]'" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
