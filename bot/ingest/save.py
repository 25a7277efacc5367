"""Save an extracted article into the corpus folder as Markdown with front matter.

The file name comes from the article's URL (the same URL always gives the same file, so adding
it again updates the article); an article whose text is already in the corpus under another
file is refused as a duplicate.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..corpus import article_files, parse_article
from ..files import atomic_write
from .extract import Extracted
from .fetch import FetchRefused
from .urls import normal_url

MAX_STEM = 60
QUOTES = "'\""


class Duplicate(FetchRefused):
    """The same text is already in the corpus under another name."""


@dataclass(frozen=True)
class SavedArticle:
    """An article written into the corpus: file name, title, link, and what happened."""

    name: str
    title: str
    url: str
    status: str  # "added", "updated" or "unchanged"


def file_name(url: str, title: str) -> str:
    """A stable, safe file name for the article at `url`: a readable slug plus a hash of the URL."""
    url = normal_url(url)
    last = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    last = re.sub(r"\.(?:html?|php|aspx?)$", "", last, flags=re.IGNORECASE)
    words = last if re.search(r"[A-Za-z]{3}", last) else title
    stem = unicodedata.normalize("NFKD", words).encode("ascii", "ignore").decode("ascii").lower()
    stem = re.sub(r"[^a-z0-9]+", "-", stem).strip("-")[:MAX_STEM].strip("-") or "article"
    return f"{stem}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:8]}.md"


def text_key(paragraphs: tuple[str, ...] | list[str]) -> str:
    """What makes two articles the same text: their words, case and punctuation aside."""
    words = re.findall(r"\w+", unicodedata.normalize("NFKC", " ".join(paragraphs)).lower())
    return hashlib.sha256(" ".join(words).encode("utf-8")).hexdigest()


def _front_value(value: str) -> str:
    return " ".join(value.split())


def to_markdown(article: Extracted) -> str:
    """The article as the corpus reads it: front matter, then one paragraph per block."""
    title = _front_value(article.title)
    # The corpus reader strips quote marks from both ends of a front-matter value; a title that
    # begins or ends with one ('Noise' takes on 'Fockers') goes on the first line instead.
    quoted = title[:1] in QUOTES or title[-1:] in QUOTES
    meta = {
        "title": None if quoted else title,
        "url": article.url,
        "published": article.published,
        "source": article.source,
    }
    head = "".join(f"{key}: {_front_value(value)}\n" for key, value in meta.items() if value)
    body = ([f"# {title}"] if quoted else []) + list(article.paragraphs)
    return f"---\n{head}---\n\n" + "\n\n".join(body) + "\n"


def existing_texts(corpus_dir: Path, skip: str) -> dict[str, str]:
    """text_key -> file name of every readable article of the corpus except `skip`."""
    keys: dict[str, str] = {}
    for path in article_files(corpus_dir):
        if path.name == skip:
            continue
        try:
            article = parse_article(path.name, path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        keys.setdefault(text_key(article.paragraphs), path.name)
    return keys


def save(corpus_dir: Path, article: Extracted) -> SavedArticle:
    """Write the article (new file, or an update of the one from the same URL); Duplicate if its
    text is already in another file."""
    name = file_name(article.url, article.title)
    text = to_markdown(article)
    parsed = parse_article(name, text)  # what the corpus will read: checked before writing
    same = existing_texts(corpus_dir, skip=name).get(text_key(parsed.paragraphs))
    if same is not None:
        raise Duplicate(f"That article is already in the corpus as {same} (the same text under another link).")
    target = corpus_dir / name
    if target.exists():
        try:
            if target.read_text(encoding="utf-8") == text:
                return SavedArticle(name, parsed.title, article.url, "unchanged")
        except (OSError, UnicodeDecodeError):
            pass
        status = "updated"
    else:
        status = "added"
    atomic_write(target, text)
    return SavedArticle(name, parsed.title, article.url, status)
