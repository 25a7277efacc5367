"""Extract the article from a news page: trafilatura for the text and metadata, htmldate for the date."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from ..corpus import is_furniture
from .fetch import FetchRefused
from .urls import normal_url

if TYPE_CHECKING:
    from trafilatura.settings import Document

MIN_SENTENCES = 3
MIN_CHARACTERS = 300
_SENTENCE_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?:\s|$)")
_NOT_FREE = re.compile(r'"isAccessibleForFree"\s*:\s*(?:false|"false"|"False")', re.IGNORECASE)
_PAYWALL_WORDS = re.compile(
    r"subscribe (?:now )?to (?:continue|keep) reading|for subscribers only|subscriber[- ]only|"
    r"already a subscriber\?|to continue reading,? (?:please )?(?:subscribe|log in|sign in)",
    re.IGNORECASE,
)


class NotAnArticle(FetchRefused):
    """The page has no article text to add (a section front, a search page, a stub)."""


@dataclass(frozen=True)
class Extracted:
    """An article taken out of its page."""

    title: str
    paragraphs: tuple[str, ...]
    url: str
    published: str | None
    source: str | None

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


# What trafilatura keeps of a page: the article's prose only, precision over recall.
TRAFILATURA_OPTIONS: dict[str, Any] = {
    "include_comments": False,
    "include_tables": False,
    "include_images": False,
    "include_links": False,
    "favor_precision": True,
}


def prose_sentences(paragraphs: tuple[str, ...] | list[str]) -> int:
    """Roughly how many sentences of prose the paragraphs hold (for the is-it-an-article test)."""
    return sum(len(_SENTENCE_END.findall(p)) for p in paragraphs if len(p.split()) >= 6)


def _paywalled(html: str) -> bool:
    return bool(_NOT_FREE.search(html) or _PAYWALL_WORDS.search(html))


def _date(html: str, url: str, found: str | None) -> str | None:
    from htmldate import find_date

    try:
        return find_date(html, url=url, original_date=True, extensive_search=False) or found
    except ValueError:
        return found


def _source(sitename: str | None, url: str) -> str:
    host = urlsplit(url).hostname or ""
    return (sitename or "").strip() or (host[4:] if host.startswith("www.") else host)


def extract_article(html: str, url: str) -> Extracted:
    """The article of a page; NotAnArticle when there is none, naming a paywall when that is why."""
    import trafilatura

    # No deduplicate=True: trafilatura's duplicate filter is a process-wide cache, so a page
    # fetched again (an update, a long-running bot) would come back empty.
    document = cast(
        "Document | None",
        trafilatura.bare_extraction(  # a Document unless as_dict=True
            html,
            url=url,
            with_metadata=True,
            **TRAFILATURA_OPTIONS,
        ),
    )
    lines = (document.text or "").split("\n") if document is not None else []
    title = " ".join((document.title or "").split()) if document is not None else ""
    paragraphs = [" ".join(line.split()) for line in lines]
    paragraphs = [p for p in paragraphs if p and not is_furniture(p) and p != title]
    paragraphs = [p[2:] if p.startswith("- ") else p for p in paragraphs]
    paywalled = _paywalled(html)
    if paywalled:  # drop the subscription prompt the extractor kept with the teaser
        paragraphs = [p for p in paragraphs if not _PAYWALL_WORDS.search(p)]
    enough = prose_sentences(paragraphs) >= MIN_SENTENCES and sum(map(len, paragraphs)) >= MIN_CHARACTERS
    if paywalled and (not enough or _NOT_FREE.search(html)):
        raise NotAnArticle("That article is behind a paywall: only a teaser is visible, so nothing was added.")
    if not enough or not title:
        raise NotAnArticle("That page is not an article (too little article text on it), so nothing was added.")
    canonical = (document.url or "") if document is not None else ""
    same_site = urlsplit(canonical).hostname == urlsplit(url).hostname and canonical.startswith(("http://", "https://"))
    return Extracted(
        title=title,
        paragraphs=tuple(paragraphs),
        url=normal_url(canonical if same_site else url),
        published=_date(html, url, document.date if document is not None else None),
        source=_source(document.sitename if document is not None else None, url),
    )


def text_article(text: str, url: str, source: str | None) -> Extracted:
    """An article given as plain text (a forwarded channel post): title on its first line."""
    lines = [" ".join(line.split()) for line in text.replace("\r", "").split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        raise NotAnArticle("That message has no text to add.")
    title, body = lines[0], [line for line in lines[1:] if not is_furniture(line)]
    if prose_sentences(body) < MIN_SENTENCES or sum(map(len, body)) < MIN_CHARACTERS:
        raise NotAnArticle(
            "That message is not an article (too little text after its first line) and holds no single link."
        )
    return Extracted(title=title.strip("*_ "), paragraphs=tuple(body), url=url, published=None, source=source)
