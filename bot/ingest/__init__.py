"""News in: add articles from links, forwarded text, files and RSS/Atom feeds to the corpus.

Shared by the CLI (`python -m bot add`, `python -m bot feeds`) and the Telegram bot. Fetching
and saving are blocking (run them in a thread from async code); reindexing after a batch goes
through `reindex` below, the one place that asks the service for it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .extract import Extracted, NotAnArticle, extract_article, text_article
from .feeds import Entry, FeedError, FeedState, FeedStore, read_feed
from .fetch import FetchPolicy, FetchRefused, fetch
from .save import Duplicate, SavedArticle, existing_texts, save, text_key

if TYPE_CHECKING:
    from ..index import BuildReport
    from ..service import QAService
    from ..settings import Settings

__all__ = [
    "Duplicate",
    "Entry",
    "FeedError",
    "FeedState",
    "FeedStore",
    "FetchPolicy",
    "FetchRefused",
    "Ingester",
    "NotAnArticle",
    "Outcome",
    "PollReport",
    "SavedArticle",
    "reindex",
    "sentence_counts",
]


def reindex(service: QAService, progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Bring the index up to date with the corpus after articles were added (incrementally)."""
    return service.reindex(progress)


def sentence_counts(service: QAService, names: list[str]) -> dict[str, int]:
    """How many sentences of each named article the serving index holds."""
    wanted = dict.fromkeys(names, 0)
    for sentence in service.answerer.index.sentences:
        if sentence.doc in wanted:
            wanted[sentence.doc] += 1
    return wanted


@dataclass(frozen=True)
class Outcome:
    """What became of one link, file or entry: the article saved, or the reason it was not."""

    source: str
    saved: SavedArticle | None = None
    reason: str | None = None


@dataclass
class PollReport:
    """One poll of every feed: the articles saved, the entries refused, the feeds that failed."""

    saved: list[SavedArticle] = field(default_factory=list)
    refused: list[Outcome] = field(default_factory=list)
    failed_feeds: list[Outcome] = field(default_factory=list)

    @property
    def added(self) -> list[SavedArticle]:
        return [s for s in self.saved if s.status != "unchanged"]

    def saved_outcomes(self) -> list[Outcome]:
        return [Outcome(s.url, saved=s) for s in self.saved]


class Ingester:
    """Adds articles to CORPUS_DIR within the fetching policy of the settings."""

    def __init__(self, settings: Settings, policy: FetchPolicy | None = None) -> None:
        self.corpus_dir: Path = settings.corpus_dir
        self.policy = policy or FetchPolicy(
            timeout=settings.fetch_timeout,
            max_bytes=settings.max_page_bytes,
            max_redirects=settings.max_redirects,
            allow_private=settings.allow_private_urls,
        )
        self.max_new_per_feed = settings.feed_max_new
        self.max_file_bytes = settings.max_upload_bytes
        self.feeds = FeedStore(settings.feeds_path, settings.feeds)
        self._saving = threading.Lock()  # one duplicate check + write at a time

    def _save(self, article: Extracted) -> SavedArticle:
        with self._saving:
            return save(self.corpus_dir, article)

    def add_url(self, url: str) -> SavedArticle:
        """Fetch the page at `url`, extract its article and save it; FetchRefused says why not."""
        page = fetch(url, self.policy)
        html = page.body.decode(_charset(page.body), errors="replace")
        return self._save(extract_article(html, page.url))

    def add_text(self, text: str, url: str, source: str | None) -> SavedArticle:
        """Save an article given as text (title on the first line), e.g. a forwarded channel post."""
        return self._save(text_article(text, url, source))

    def add_file(self, path: Path) -> SavedArticle:
        """Save a .txt/.md article file into the corpus under its own (made safe) name, as /add of a file does."""
        from ..corpus import parse_article
        from ..telegram.uploads import UploadError, check_upload, decode_article, safe_name, save_article

        try:
            check_upload(path.name, path.stat().st_size, self.max_file_bytes)
            content = path.read_bytes()
            name = safe_name(path.name, content)
            article = parse_article(name, decode_article(name, content, self.max_file_bytes))
            with self._saving:
                same = existing_texts(self.corpus_dir, skip=name).get(text_key(article.paragraphs))
                if same is not None:
                    raise Duplicate(f"That article is already in the corpus as {same} (the same text).")
                saved = save_article(self.corpus_dir, name, content.decode("utf-8"))
        except UploadError as exc:
            raise FetchRefused(str(exc)) from None
        except OSError as exc:
            raise FetchRefused(f"Cannot read {path}: {exc.strerror}") from None
        return SavedArticle(name, article.title, article.url or "", "updated" if saved.replaced else "added")

    def add_many(self, urls: list[str], progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
        """Add each link in turn; a refused one does not stop the others."""
        outcomes = []
        for url in urls:
            try:
                outcome = Outcome(url, saved=self.add_url(url))
            except FetchRefused as exc:
                outcome = Outcome(url, reason=str(exc))
            outcomes.append(outcome)
            if progress:
                progress(outcome)
        return outcomes

    def poll(self, progress: Callable[[Outcome], None] | None = None) -> PollReport:
        """Read every feed once and add the articles of its new entries (no reindex here)."""
        report = PollReport()
        for state in self.feeds.feeds():
            try:
                entries, after = read_feed(state, self.policy)
            except FetchRefused as exc:
                report.failed_feeds.append(Outcome(state.url, reason=str(exc)))
                continue
            retry_later = False
            for entry in entries[-self.max_new_per_feed :]:
                try:
                    outcome = Outcome(entry.link, saved=self.add_url(entry.link))
                    report.saved.append(outcome.saved)  # type: ignore[arg-type]
                except (NotAnArticle, Duplicate) as exc:  # final: never try this entry again
                    outcome = Outcome(entry.link, reason=str(exc))
                    report.refused.append(outcome)
                except FetchRefused as exc:  # maybe passing (timeout, 5xx): try again next poll
                    report.refused.append(Outcome(entry.link, reason=str(exc)))
                    retry_later = True
                    if progress:
                        progress(Outcome(entry.link, reason=str(exc)))
                    continue
                after.seen.append(entry.key)
                if progress:
                    progress(outcome)
            after.seen.extend(e.key for e in entries[: -self.max_new_per_feed])  # too many at once: skipped
            if retry_later:  # fetch the whole feed again next time, so the failed entries come back
                after.etag = after.modified = None
            self.feeds.update(after)
        return report


def _charset(body: bytes) -> str:
    """utf-8 unless the page declares otherwise in its first bytes."""
    match = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", body[:4096], re.IGNORECASE)
    if match:
        name = match.group(1).decode("ascii", "ignore")
        try:
            "".encode(name)
            return name
        except LookupError:
            pass
    return "utf-8"
