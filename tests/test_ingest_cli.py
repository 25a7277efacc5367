"""`python -m bot add` and `python -m bot feeds --once` as a user runs them (real model, subprocess)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SMALL_ARTICLE
from .test_cli import run_bot
from .web.newssite import NewsSite, serve


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    yield from serve()


def test_add_and_feeds_once_then_ask(site: NewsSite, tmp_path: Path, news_service) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "harbour.md").write_text(SMALL_ARTICLE, encoding="utf-8")
    index = tmp_path / "index"
    try:  # reuse the session's ONNX export of the model (made once, ~10 s)
        from bot.onnx_encoder import onnx_dir

        model = news_service.settings.embedding_model
        export = onnx_dir(news_service.settings.index_dir, model)
        if export.is_dir():
            shutil.copytree(export, onnx_dir(index, model))
    except ImportError:
        pass
    article = tmp_path / "ferry.txt"
    article.write_text(
        "Ferry service resumes\n\nThe island ferry carried 212 passengers on Monday.\n", encoding="utf-8"
    )
    env = {"ALLOW_PRIVATE_URLS": "true", "FEEDS": site.url("/feeds/rss.xml")}
    nba = site.story("nba-brawl-suspensions")
    flags = ("--corpus-dir", str(corpus), "--index-dir", str(index))

    added = run_bot(*flags, "add", site.url(nba), str(article), site.url("/world"), cwd=tmp_path, env=env)
    assert added.returncode == 1, added.stderr  # one of the three was refused
    assert (
        f"added: {nba.title} (" in added.stdout
        and "added: Ferry service resumes (1 sentences) -> ferry.txt" in added.stdout
    )
    assert f"not added: {site.url('/world')}: That page is not an article" in added.stderr
    assert "Traceback" not in added.stderr

    site.rss_items[:] = [nba, site.story("mst-attack-rondonia")]
    polled = run_bot(*flags, "feeds", "--once", cwd=tmp_path, env=env)
    assert polled.returncode == 0, polled.stderr
    assert "Polled 1 feeds: 1 new articles." in polled.stdout
    assert "added: MST attack in Rondonia kills one man" in polled.stdout

    again = run_bot(*flags, "feeds", "--once", cwd=tmp_path, env=env)
    assert "Polled 1 feeds: 0 new articles." in again.stdout

    answer = run_bot(*flags, "ask", "How many games was Stephen Jackson suspended for?", cwd=tmp_path, env=env)
    assert "Stephen Jackson for 30 games" in " ".join(answer.stdout.split())
