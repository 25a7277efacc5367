"""RSS/Atom feeds: the list of feeds (FEEDS plus those added by admins), kept in a JSON file, and
polling them with feedparser, honouring ETag/Last-Modified and remembering the entries seen."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..files import atomic_write
from .fetch import FEED_TYPES, FetchPolicy, FetchRefused, check_url, fetch
from .urls import normal_url

MAX_SEEN = 2000  # entries remembered per feed (older ones fall out of feeds long before this)


@dataclass
class FeedState:
    """One feed: its URL, caching validators of the last fetch, and the entries already handled."""

    url: str
    etag: str | None = None
    modified: str | None = None
    seen: list[str] = field(default_factory=list)
    title: str | None = None
    added: bool = False  # by /feed add (kept until removed), else from FEEDS (kept while listed there)


@dataclass(frozen=True)
class Entry:
    """A new feed entry: its id (guid or link), the link to its article, and its title."""

    key: str
    link: str
    title: str


class FeedError(ValueError):
    """A feed command that cannot be carried out; the message says why."""


class FeedStore:
    """The feeds polled (FEEDS setting first, then added ones), saved atomically to FEEDS_FILE."""

    def __init__(self, path: Path, configured: Iterable[str] = ()) -> None:
        self.path = path
        self.configured = tuple(dict.fromkeys(normal_url(check_url(u)) for u in configured))
        self._lock = threading.Lock()

    def _read(self) -> dict[str, FeedState]:
        try:
            rows = json.loads(self.path.read_text(encoding="utf-8")).get("feeds", [])
        except FileNotFoundError:
            rows = []
        except (OSError, ValueError) as exc:
            raise FeedError(f"Cannot read the feed list {self.path}: {exc}") from None
        states = {row["url"]: FeedState(**row) for row in rows}
        states = {url: s for url, s in states.items() if s.added or url in self.configured}
        for url in self.configured:
            states.setdefault(url, FeedState(url))
        return states

    def _write(self, states: dict[str, FeedState]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, json.dumps({"feeds": [asdict(s) for s in states.values()]}, indent=1) + "\n")

    def feeds(self) -> list[FeedState]:
        """Every feed, the configured ones first."""
        with self._lock:
            return list(self._read().values())

    def add(self, url: str) -> bool:
        """Add a feed; False when it was already there."""
        url = normal_url(check_url(url))
        with self._lock:
            states = self._read()
            if url in states:
                return False
            states[url] = FeedState(url, added=True)
            self._write(states)
            return True

    def remove(self, url: str) -> bool:
        """Stop polling a feed; False when it was not there. Feeds from FEEDS stay (say so)."""
        url = normal_url(url)
        if url in self.configured:
            raise FeedError("That feed comes from the FEEDS setting; remove it there and restart.")
        with self._lock:
            states = self._read()
            if states.pop(url, None) is None:
                return False
            self._write(states)
            return True

    def update(self, state: FeedState) -> None:
        """Save a polled feed's new validators and seen entries (unless it was removed meanwhile)."""
        with self._lock:
            states = self._read()
            if state.url in states:
                state.seen = state.seen[-MAX_SEEN:]
                states[state.url] = state
                self._write(states)


def read_feed(state: FeedState, policy: FetchPolicy) -> tuple[list[Entry], FeedState]:
    """The feed's entries not seen before (oldest first), and its state after this fetch.

    The returned state has the new ETag/Last-Modified; the caller marks entries seen as it
    handles them and saves the state with FeedStore.update.
    """
    import feedparser

    headers = {}
    if state.etag:
        headers["If-None-Match"] = state.etag
    if state.modified:
        headers["If-Modified-Since"] = state.modified
    page = fetch(state.url, policy, accept=FEED_TYPES + ("text/html",), headers=headers)
    after = FeedState(
        state.url,
        page.etag or state.etag,
        page.last_modified or state.modified,
        list(state.seen),
        state.title,
        state.added,
    )
    if page.not_modified:
        return [], after
    parsed = feedparser.parse(page.body, response_headers={"content-location": page.url})
    if parsed.bozo and not parsed.entries:
        raise FetchRefused(f"That is not an RSS or Atom feed ({type(parsed.bozo_exception).__name__}).")
    after.title = parsed.feed.get("title") or state.title
    seen = set(state.seen)
    entries = []
    for item in parsed.entries:
        link = item.get("link") or ""
        key = item.get("id") or link
        if link and key not in seen:
            entries.append(Entry(key, link, item.get("title", "")))
            seen.add(key)
    entries.reverse()  # feeds list the newest first
    return entries, after
