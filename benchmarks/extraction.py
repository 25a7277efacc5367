"""Extraction from news pages: trafilatura (what `bot.ingest` uses) against readability-lxml.

Serves the 30 Wikinews articles of tests/web/wikinews wrapped in news-site furniture
(tests/web/newssite.py) on 127.0.0.1, and for every page measures, per extractor:
- recall: the share of the original article's sentences found whole in the extracted text;
- furniture: (raw: in the extractor's own output; else: in what the corpus would cite) pieces
  of page furniture (navigation, cookie banner, share bar, captions, byline,
  adverts, related stories, comments, footer) found in the extracted text.
For trafilatura the page goes through the bot's own path (fetch, extract, save as Markdown,
read back by the corpus loader), so the figures are those of what the bot would cite; the
readability paragraphs go through the same furniture filter, Markdown and corpus loader.

    PYTHONPATH=. python benchmarks/extraction.py [--corpus-out DIR] [--json]
        [--eval ../shared/benchmarks/wikinews-qa/questions-dev.jsonl --original ../shared/benchmarks/wikinews-qa/corpus]

--corpus-out DIR keeps the ingested corpus; --eval also runs `python -m bot eval` on the
questions over the original files and over the ingested corpus (real model, a minute or two)
and prints both P@1 figures: extraction should not change them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.corpus import is_furniture, parse_article, split_dateline  # noqa: E402
from bot.ingest import FetchPolicy, Ingester  # noqa: E402
from bot.ingest.extract import Extracted  # noqa: E402
from bot.ingest.fetch import fetch  # noqa: E402
from bot.ingest.save import to_markdown  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.split import split_sentences  # noqa: E402
from tests.web.newssite import furniture_lines, serve  # noqa: E402


def norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return " ".join(re.findall(r"\w+", text.lower()))


def readability_paragraphs(html: str) -> list[str]:
    import lxml.html
    from readability import Document

    summary = lxml.html.fromstring(Document(html).summary(html_partial=True))
    blocks = summary.xpath("//p|//li|//h1|//h2|//h3|//blockquote|//figcaption")
    texts = [" ".join(b.text_content().split()) for b in blocks]
    return [t for t in texts if t] or [" ".join(summary.text_content().split())]


def trafilatura_raw(html: str, url: str) -> list[str]:
    """trafilatura's own output with the options bot.ingest uses, before the corpus's furniture filter."""
    import trafilatura

    from bot.ingest.extract import TRAFILATURA_OPTIONS

    text = trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS) or ""
    return [line for line in text.split("\n") if line.strip()]


def through_corpus(paragraphs: list[str], title: str) -> list[str]:
    """Paragraphs as the bot would cite them: furniture lines dropped, saved and read back."""
    kept = tuple(p for p in paragraphs if not is_furniture(p) and p != title)
    text = to_markdown(Extracted(title, kept, "https://example.com/a", None, None))
    return list(parse_article("a.md", text).paragraphs)


def score(original: list[str], extracted: list[str], furniture: list[str]) -> tuple[float, list[str]]:
    """(share of the original sentences found, furniture pieces and non-article sentences found).

    A piece of furniture of three or more words counts when it is in the extracted text; a
    shorter one (a menu item, "Reply") when it is a whole extracted line; an extracted sentence
    that is not in the original article counts too.
    """
    haystack = norm(" ".join(extracted))
    found = sum(1 for s in original if norm(s) in haystack)
    lines = {norm(line) for line in extracted}
    hits = [f for f in furniture if (len(f.split()) >= 3 and norm(f) in haystack) or norm(f) in lines]
    article = norm(" ".join(original))
    extra = [s for line in extracted for s in split_sentences(line) if norm(s) not in article]
    return found / len(original), sorted(set(hits + extra))


def evaluate(corpus: Path, questions: Path) -> dict:
    """`python -m bot eval --json` over a corpus folder, in a fresh index folder."""
    with tempfile.TemporaryDirectory(prefix="eval-index-") as index:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot",
                "--corpus-dir",
                str(corpus),
                "--index-dir",
                index,
                "eval",
                str(questions),
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {k: figures[k] for k in ("p_at_1", "mrr") if k in figures} or figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus-out", type=Path, help="keep the corpus ingested with trafilatura here")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--eval", type=Path, help="questions (JSON lines) to evaluate over both corpora")
    parser.add_argument("--original", type=Path, help="the original article files (with --eval)")
    args = parser.parse_args()
    if args.eval and not args.original:
        parser.error("--eval needs --original (the folder of the original article files)")

    site_iter = serve()
    site = next(site_iter)
    stories = site.stories
    furniture = furniture_lines(stories)
    out = args.corpus_out or Path(tempfile.mkdtemp(prefix="ingested-"))
    out.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        _env_file=None, corpus_dir=out, feeds_file=out.parent / ".bench-feeds.json", allow_private_urls=True
    )
    ingester = Ingester(settings)
    policy = FetchPolicy(allow_private=True)
    rows = []
    seconds = {"trafilatura": 0.0, "readability": 0.0}
    for story in stories:
        # an opening dateline ("OSLO \u2014 ...") is the article's metadata, not part of its first sentence
        paragraphs = [split_dateline(story.paragraphs[0])[1], *story.paragraphs[1:]]
        original = [s for p in paragraphs for s in split_sentences(p)]
        related = [s.title for s in stories if s.slug != story.slug]  # "related stories" / "read more" titles
        html = fetch(site.url(story), policy).body.decode("utf-8")

        started = time.perf_counter()
        saved = ingester.add_url(site.url(story))
        seconds["trafilatura"] += time.perf_counter() - started
        article = parse_article(saved.name, (out / saved.name).read_text(encoding="utf-8"))
        ours = list(article.paragraphs)
        t_recall, t_hits = score(original, ours, furniture + related)

        started = time.perf_counter()
        theirs = through_corpus(readability_paragraphs(html), story.title)
        seconds["readability"] += time.perf_counter() - started
        r_recall, r_hits = score(original, theirs, furniture + related)
        raw = {
            "trafilatura": trafilatura_raw(html, site.url(story)),
            "readability": readability_paragraphs(html),
        }
        raw_hits = {name: len(score(original, paragraphs, furniture + related)[1]) for name, paragraphs in raw.items()}
        rows.append(
            {
                "slug": story.slug,
                "sentences": len(original),
                "trafilatura_recall": round(t_recall, 4),
                "trafilatura_furniture": t_hits,
                "readability_recall": round(r_recall, 4),
                "readability_furniture": r_hits,
                "trafilatura_raw_furniture": raw_hits["trafilatura"],
                "readability_raw_furniture": raw_hits["readability"],
                "title_ok": article.title == story.title,
                "title": article.title,
                "date_ok": (article.published or "")[:10] == story.date,
            }
        )
    site_iter.close()

    summary = {}
    for name in ("trafilatura", "readability"):
        recalls = [r[f"{name}_recall"] for r in rows]
        summary[name] = {
            "min_recall": min(recalls),
            "mean_recall": round(statistics.mean(recalls), 4),
            "articles_below_95": sum(1 for r in recalls if r < 0.95),
            "articles_with_furniture": sum(1 for r in rows if r[f"{name}_furniture"]),
            "furniture_pieces": sum(len(r[f"{name}_furniture"]) for r in rows),
            "raw_furniture_pieces": sum(r[f"{name}_raw_furniture"] for r in rows),
            "raw_articles_with_furniture": sum(1 for r in rows if r[f"{name}_raw_furniture"]),
            "ms_per_page": round(1000 * seconds[name] / len(rows), 1),
        }
    summary["trafilatura"]["titles_right"] = sum(r["title_ok"] for r in rows)
    summary["trafilatura"]["dates_right"] = sum(r["date_ok"] for r in rows)
    if args.eval:
        summary["eval"] = {
            name: evaluate(folder, args.eval) for name, folder in (("original", args.original), ("ingested", out))
        }
    if args.json:
        print(json.dumps({"articles": len(rows), "summary": summary, "rows": rows}))
        return
    print(f"{'article':40} {'sent':>4} {'trafilatura':>12} {'readability':>12}  furniture (traf / read)")
    for r in rows:
        print(
            f"{r['slug'][:40]:40} {r['sentences']:>4} {r['trafilatura_recall']:>12.1%} {r['readability_recall']:>12.1%}"
            f"  {len(r['trafilatura_furniture'])} / {len(r['readability_furniture'])}"
            + (f"  {r['readability_furniture'][:2]}" if r["readability_furniture"] else "")
        )
    for name, figures in summary.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    print(f"ingested corpus: {out}")


if __name__ == "__main__":
    main()
