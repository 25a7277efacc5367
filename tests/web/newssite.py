"""A fake news site on 127.0.0.1 for ingestion tests: Wikinews articles wrapped in page furniture.

The articles in `wikinews/` are English Wikinews reports (CC BY 2.5, or public domain before
2005-09-25; see wikinews/SOURCES.md and each file's `license:` line). Every page is generated
from one template with the furniture real news sites carry around an article: a cookie
banner, navigation, byline, share bar, photo with caption, an advert and a "read more" teaser
in the body, tags, related stories, reader comments and a footer. Which pieces appear, and in
which markup, varies per article (seeded by its slug), so that extraction is not tuned to one
layout.

Also served: an RSS and an Atom feed over the articles (ETag and Last-Modified honoured), a
paywall stub, a section front that is not an article, a redirect chain, a redirect loop, a PDF,
an oversized page and a slow page.
"""

from __future__ import annotations

import html
import json
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

WIKINEWS = Path(__file__).resolve().parent / "wikinews"
SITE = "The Harbour Ledger"

NAV = ["Home", "World", "Politics", "Business", "Science", "Sport", "Culture", "Opinion", "Podcasts"]
COOKIE_BANNERS = [
    "We use cookies to personalise content and ads and to analyse our traffic. By continuing to browse you agree to our cookie policy.",
    "This website stores cookies on your computer to improve your experience and for analytics. Accept all cookies or manage your preferences.",
]
SHARE = ["Share on Facebook", "Share on X", "Share on WhatsApp", "Email this story", "Copy link"]
ADVERTS = [
    "Advertisement",
    "Sponsored: Refinance your home today and save hundreds every month with our partner lenders.",
]
NEWSLETTER = "Sign up for our morning briefing newsletter and get the day's top stories delivered to your inbox."
COMMENTS = [
    ("harbourwatcher", "Typical of the mainstream media to bury the real story at the bottom of the page."),
    ("J. Alvarez", "Great reporting, thanks for covering this when nobody else would bother."),
    ("skeptic_77", "I will believe it when I see the official figures published somewhere reliable."),
    ("Mara K.", "My cousin lives near there and says the local papers tell a very different story."),
]
CAPTIONS = [
    "A file photo released by the organisers shows the scene earlier this year.",
    "Visitors gather outside the venue on the opening morning in this undated handout picture.",
    "The building pictured from across the square on a grey afternoon last winter.",
]
PHOTO_CREDITS = ["Photo: Ledger Picture Desk", "Image: Handout via Reuters-style wire", "Photo: Staff photographer"]
AUTHORS = ["Staff Reporter", "Dana Whitfield", "Our Correspondent", "Tomas Lindqvist"]
FOOTER = "\u00a9 2026 The Harbour Ledger Media Group. All rights reserved. About us \u00b7 Contact \u00b7 Terms of use \u00b7 Privacy"
TAGS = ["Top stories", "Editor's picks", "International"]


@dataclass(frozen=True)
class Story:
    """One Wikinews article: slug, title, original url, date, licence line, paragraphs."""

    slug: str
    title: str
    wikinews_url: str
    published: str
    license: str
    paragraphs: tuple[str, ...]

    @property
    def date(self) -> str:
        """The publication date as YYYY-MM-DD (a bare month gets the 1st)."""
        day = self.published.split()[0]
        return day if len(day) == 10 else f"{day}-01"

    @property
    def path(self) -> str:
        year, month, day = self.date.split("-")
        return f"/{year}/{month}/{day}/{self.slug}"


def load_stories(folder: Path = WIKINEWS) -> list[Story]:
    """The Wikinews articles of `folder` (front matter: title, url, published, license)."""
    stories = []
    for path in sorted(folder.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        if not text.startswith("---\n"):
            continue  # SOURCES.md
        head, body = text[4:].split("\n---\n", 1)
        meta = dict(line.split(": ", 1) for line in head.splitlines() if ": " in line)
        meta = {k: v[1:-1] if len(v) > 1 and v[0] == v[-1] == '"' else v for k, v in meta.items()}
        paragraphs = tuple(p.strip() for p in re.split(r"\n\s*\n", body) if p.strip())
        stories.append(Story(path.stem, meta["title"], meta["url"], meta["published"], meta["license"], paragraphs))
    return stories


def furniture_lines(stories: list[Story]) -> list[str]:
    """Every piece of furniture text any page may carry (what extraction must leave out)."""
    lines = NAV[1:] + COOKIE_BANNERS + SHARE + ADVERTS[1:] + [NEWSLETTER, FOOTER] + CAPTIONS + PHOTO_CREDITS
    lines += [text for _, text in COMMENTS] + [f"By {a}" for a in AUTHORS] + ["Related stories", "Read more"]
    return lines


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def article_page(story: Story, base: str, stories: list[Story]) -> str:
    """The story as a news site would publish it, furniture and all."""
    rng = random.Random(story.slug)
    others = [s for s in stories if s.slug != story.slug]
    related = rng.sample(others, min(4, len(others)))
    teaser = rng.choice(others)
    author = rng.choice(AUTHORS)
    when = datetime.fromisoformat(story.date).replace(hour=8, minute=30, tzinfo=UTC)
    url = base + story.path
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title,
        "datePublished": when.isoformat(),
        "author": {"@type": "Person", "name": author},
        "publisher": {"@type": "Organization", "name": SITE},
        "mainEntityOfPage": url,
    }
    body: list[str] = []
    ad_at = rng.randrange(1, max(2, len(story.paragraphs)))
    teaser_at = rng.randrange(1, max(2, len(story.paragraphs)))
    for number, paragraph in enumerate(story.paragraphs):
        if number == ad_at:
            body.append(f'<aside class="ad-slot"><span class="ad-label">{_e(rng.choice(ADVERTS))}</span></aside>')
        if number == teaser_at:
            body.append(
                f'<p class="read-more"><strong>Read more:</strong> <a href="{_e(base + teaser.path)}">{_e(teaser.title)}</a></p>'
            )
        body.append(f"<p>{_e(paragraph)}</p>")
    body.append(
        f'<div class="newsletter-signup"><p>{_e(NEWSLETTER)}</p><form><input type="email" placeholder="Your email"><button>Subscribe</button></form></div>'
    )
    caption = rng.choice(CAPTIONS)
    credit = rng.choice(PHOTO_CREDITS)
    comments = rng.sample(COMMENTS, rng.randint(2, 4))
    layout = rng.randrange(2)  # two markups: semantic HTML5, or the div soup of an older CMS
    nav = "".join(f'<li><a href="/{n.lower()}">{_e(n)}</a></li>' for n in NAV)
    share = "".join(f'<a class="share-btn" href="#">{_e(s)}</a>' for s in SHARE)
    related_html = "".join(f'<li><a href="{_e(base + s.path)}">{_e(s.title)}</a></li>' for s in related)
    comments_html = "".join(
        f'<div class="comment"><span class="comment-author">{_e(who)}</span><p>{_e(text)}</p>'
        f'<a href="#" class="reply">Reply</a></div>'
        for who, text in comments
    )
    byline = (
        f'<div class="byline">By <a rel="author" href="/authors/{rng.randrange(99)}">{_e(author)}</a> '
        f'\u00b7 <time datetime="{when.isoformat()}">{when:%d %B %Y}</time> \u00b7 Updated 2 hours ago</div>'
    )
    figure = (
        f'<figure class="lead-image"><img src="/img/{story.slug}.jpg" alt="{_e(story.title)}">'
        f'<figcaption>{_e(caption)} <span class="credit">{_e(credit)}</span></figcaption></figure>'
    )
    if layout == 0:
        main = (
            f'<main id="content"><article class="story">'
            f'<header><p class="kicker">{_e(rng.choice(NAV[1:]))}</p><h1>{_e(story.title)}</h1>{byline}</header>'
            f'<div class="share-bar">{share}</div>{figure}'
            f'<div class="story-body">{"".join(body)}</div>'
            f'<footer class="tags">Topics: {", ".join(_e(t) for t in TAGS)}</footer></article>'
            f'<section class="related-stories"><h2>Related stories</h2><ul>{related_html}</ul></section>'
            f'<section id="comments" class="comments"><h2>Comments ({len(comments)})</h2>{comments_html}</section></main>'
        )
    else:
        main = (
            f'<div id="main-wrapper"><div class="col-left"><div class="headline-box"><h1 class="entry-title">{_e(story.title)}</h1></div>'
            f'{byline}<div class="social-share">{share}</div>{figure}'
            f'<div class="entry-content" itemprop="articleBody">{"".join(body)}</div>'
            f'<div class="post-tags">Tags: {", ".join(_e(t) for t in TAGS)}</div>'
            f'<div id="disqus_thread" class="comment-list"><h3>{len(comments)} Responses</h3>{comments_html}</div></div>'
            f'<div class="sidebar"><div class="widget popular"><h3>Related stories</h3><ul>{related_html}</ul></div></div></div>'
        )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(story.title)} | {SITE}</title>"
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta property="og:type" content="article"><meta property="og:title" content="{_e(story.title)}">'
        f'<meta property="og:site_name" content="{SITE}"><meta property="og:url" content="{_e(url)}">'
        f'<meta property="article:published_time" content="{when.isoformat()}">'
        f'<link rel="canonical" href="{_e(url)}">'
        f'<script type="application/ld+json">{json.dumps(ld)}</script>'
        f"<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments)}}</script>"
        f"</head><body>"
        f'<div id="cookie-banner" class="cookie-consent" role="dialog"><p>{_e(rng.choice(COOKIE_BANNERS))}</p>'
        f"<button>Accept all</button><button>Manage preferences</button></div>"
        f'<header class="site-header"><a class="logo" href="/">{SITE}</a><nav class="main-nav"><ul>{nav}</ul></nav>'
        f'<a class="subscribe-cta" href="/subscribe">Subscribe</a></header>'
        f"{main}"
        f'<footer class="site-footer"><p>{_e(FOOTER)}</p></footer>'
        f"<!-- story {story.slug}; licence: {_e(story.license)}; source: {_e(story.wikinews_url)} -->"
        f"</body></html>"
    )


def paywall_page(story: Story, base: str) -> str:
    """A subscriber-only story: headline, standfirst and the first paragraph, then a paywall."""
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": story.title,
        "isAccessibleForFree": False,
        "hasPart": {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": ".paywalled"},
    }
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{_e(story.title)} | {SITE}</title>'
        f'<meta property="og:type" content="article"><script type="application/ld+json">{json.dumps(ld)}</script></head>'
        f'<body><header><nav><a href="/">Home</a> <a href="/world">World</a></nav></header>'
        f'<article><h1>{_e(story.title)}</h1><div class="byline">By Staff Reporter</div>'
        f"<p>{_e(story.paragraphs[0])}</p>"
        f'<div class="paywalled"><div class="paywall-prompt"><h2>Subscribe to continue reading</h2>'
        f"<p>This story is for subscribers only. Subscribe now for unlimited access to award-winning journalism.</p>"
        f"<p>Already a subscriber? Log in</p></div></div></article></body></html>"
    )


def section_page(stories: list[Story], base: str) -> str:
    """A section front: a list of headlines with links, no article."""
    items = "".join(
        f'<li class="card"><a href="{_e(base + s.path)}"><h3>{_e(s.title)}</h3></a><span>{s.date}</span></li>'
        for s in stories[:12]
    )
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>World news | {SITE}</title>'
        f'<meta property="og:type" content="website"></head><body><header><nav><a href="/">Home</a></nav></header>'
        f'<main><h1>World</h1><ul class="cards">{items}</ul></main><footer>{_e(FOOTER)}</footer></body></html>'
    )


def _rfc822(date: str) -> str:
    return format_datetime(datetime.fromisoformat(date).replace(hour=8, minute=30, tzinfo=UTC))


def rss_feed(stories: list[Story], base: str) -> str:
    items = "".join(
        f"<item><title>{_e(s.title)}</title><link>{_e(base + s.path)}</link>"
        f'<guid isPermaLink="false">ledger-{s.slug}</guid><pubDate>{_rfc822(s.date)}</pubDate>'
        f"<description>{_e(s.paragraphs[0][:140])}</description></item>"
        for s in stories
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{SITE}</title>'
        f"<link>{_e(base)}/</link><description>Latest news</description>{items}</channel></rss>"
    )


def atom_feed(stories: list[Story], base: str) -> str:
    entries = "".join(
        f'<entry><title>{_e(s.title)}</title><link rel="alternate" href="{_e(base + s.path)}"/>'
        f"<id>tag:ledger.test,2026:{s.slug}</id><updated>{s.date}T08:30:00Z</updated>"
        f"<summary>{_e(s.paragraphs[0][:140])}</summary></entry>"
        for s in stories
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{SITE}</title><id>tag:ledger.test,2026:feed</id><updated>2026-01-01T00:00:00Z</updated>"
        f"{entries}</feed>"
    )


@dataclass
class NewsSite:
    """The site's state: which stories each feed lists (tests add more), and what was requested."""

    stories: list[Story] = field(default_factory=load_stories)
    rss_items: list[Story] = field(default_factory=list)
    atom_items: list[Story] = field(default_factory=list)
    slow_seconds: float = 3.0
    requests: list[str] = field(default_factory=list)
    conditional: list[tuple[str | None, str | None]] = field(default_factory=list)  # feed validators received
    base: str = ""

    def story(self, slug: str) -> Story:
        return next(s for s in self.stories if s.slug == slug)

    def url(self, path_or_story: str | Story) -> str:
        path = path_or_story.path if isinstance(path_or_story, Story) else path_or_story
        return self.base + path

    def feed_version(self, items: list[Story]) -> tuple[str, str]:
        """(ETag, Last-Modified) of a feed listing `items`."""
        etag = '"' + str(abs(hash(tuple(s.slug for s in items)))) + '"'
        return etag, _rfc822(max((s.date for s in items), default="2026-01-01"))

    def respond(self, path: str) -> tuple[int, dict[str, str], bytes] | float:
        """(status, headers, body) for a path; a float means: stall this many seconds first."""
        html_type = {"Content-Type": "text/html; charset=utf-8"}
        by_path = {s.path: s for s in self.stories}
        if path in by_path:
            return 200, html_type, article_page(by_path[path], self.base, self.stories).encode()
        if path.startswith("/premium/"):
            return 200, html_type, paywall_page(self.story(path.rsplit("/", 1)[1]), self.base).encode()
        if path == "/world":
            return 200, html_type, section_page(self.stories, self.base).encode()
        if match := re.fullmatch(r"/go/(\d+)/(.+)", path):  # a chain of n redirects to a story
            hops, rest = int(match.group(1)), match.group(2)
            target = f"/go/{hops - 1}/{rest}" if hops > 1 else "/" + rest
            return 302, {"Location": self.base + target}, b""
        if path.startswith("/syndicated/"):  # the same story republished by a partner site
            story = self.story(path.rsplit("/", 1)[1])
            page = article_page(story, self.base, self.stories).replace(SITE, "The Partner Gazette")
            page = page.replace(self.base + story.path, self.base + path)  # its own canonical URL
            return 200, html_type, page.encode()
        if path.startswith("/away/"):  # a redirect to another host of this machine (127.0.0.2)
            return 302, {"Location": self.base.replace("127.0.0.1", "127.0.0.2") + "/" + path.split("/", 2)[2]}, b""
        if path == "/loop":
            return 301, {"Location": "/loop"}, b""
        if path == "/report.pdf":
            return 200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\n" + b"0" * 2000
        if path == "/huge":
            story = self.stories[0]
            page = article_page(story, self.base, self.stories)
            return 200, html_type, page.replace("</body>", "<!--" + "x" * 3_000_000 + "--></body>").encode()
        if path == "/huge-undeclared":  # no Content-Length: only counting the bytes finds out
            status, headers, body = self.respond("/huge")  # type: ignore[misc]
            return status, {**headers, "X-Omit-Length": "1"}, body
        if path == "/slow":
            return self.slow_seconds
        return 404, html_type, b"<html><body><h1>Page not found</h1></body></html>"


class _Handler(BaseHTTPRequestHandler):
    site: NewsSite

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        site = self.server.site  # type: ignore[attr-defined]
        site.requests.append(self.path)
        path = urlsplit(self.path).path
        if path in ("/feeds/rss.xml", "/feeds/atom.xml"):
            self._feed(site, path)
            return
        result = site.respond(path)
        if isinstance(result, float):
            time.sleep(result)
            result = 200, {"Content-Type": "text/html"}, article_page(site.stories[0], site.base, site.stories).encode()
        status, headers, body = result
        self.send_response(status)
        for key, value in headers.items():
            if key != "X-Omit-Length":
                self.send_header(key, value)
        if "X-Omit-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _feed(self, site: NewsSite, path: str) -> None:
        rss = path.endswith("rss.xml")
        items = site.rss_items if rss else site.atom_items
        etag, modified = site.feed_version(items)
        site.conditional.append((self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")))
        if self.headers.get("If-None-Match") is not None:  # RFC 9110: the ETag decides when sent
            fresh = self.headers["If-None-Match"] == etag
        else:
            fresh = self.headers.get("If-Modified-Since") == modified
        if fresh:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return
        body = (rss_feed if rss else atom_feed)(items, site.base).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml" if rss else "application/atom+xml")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    site: NewsSite


def serve(site: NewsSite | None = None) -> Iterator[NewsSite]:
    """Serve a NewsSite on 127.0.0.1 (a free port) until the generator is closed."""
    site = site or NewsSite()
    server = _Server(("127.0.0.1", 0), _Handler)
    server.site = site
    site.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
