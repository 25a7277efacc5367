"""News in: links fetched safely and extracted, saved as Markdown, feeds polled once per entry.

Every page comes from the fake news site in tests/web (127.0.0.1, a free port): Wikinews
articles wrapped in news-site furniture, feeds, a paywall, a section front, redirects, a PDF,
an oversized page and a slow page.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.corpus import load_corpus, parse_article
from bot.ingest import Duplicate, FeedError, FeedStore, FetchPolicy, FetchRefused, Ingester, NotAnArticle
from bot.ingest.extract import extract_article
from bot.ingest.save import file_name
from bot.settings import Settings
from bot.split import split_sentences

from .web.newssite import NewsSite, Story, article_page, furniture_lines, serve


@pytest.fixture(scope="module")
def site_server() -> Iterator[NewsSite]:
    yield from serve()


@pytest.fixture
def site(site_server: NewsSite) -> Iterator[NewsSite]:
    """The served site, its feeds empty and its stories as published, for each test."""
    original = list(site_server.stories)
    site_server.rss_items, site_server.atom_items = [], []
    site_server.conditional.clear()
    site_server.slow_seconds = 1.0
    yield site_server
    site_server.stories[:] = original


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    return Settings(
        _env_file=None,
        corpus_dir=corpus,
        allow_private_urls=True,
        fetch_timeout=10.0,
        max_page_bytes=1_000_000,
        max_redirects=3,
    )


@pytest.fixture
def ingester(settings: Settings) -> Ingester:
    return Ingester(settings)


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def sentences(story: Story) -> list[str]:
    return [s for p in story.paragraphs for s in split_sentences(p)]


# --- extraction --------------------------------------------------------------------------------


@pytest.mark.parametrize("number", range(0, 30, 5))
def test_extraction_keeps_the_article_and_drops_the_furniture(site: NewsSite, number: int) -> None:
    story = site.stories[number]
    stories = site.stories
    extracted = extract_article(article_page(story, "https://news.test", stories), "https://news.test" + story.path)
    text = " ".join(extracted.paragraphs)
    found = [s for s in sentences(story) if s in text]
    assert len(found) >= 0.95 * len(sentences(story))
    others = [s.title for s in stories if s is not story]
    assert [f for f in furniture_lines(stories) + others if len(f.split()) >= 3 and f in text] == []
    assert extracted.title == story.title and extracted.published == story.date
    assert extracted.source == "The Harbour Ledger"


# --- links -------------------------------------------------------------------------------------


def test_a_link_becomes_a_markdown_article_with_front_matter(
    site: NewsSite, ingester: Ingester, settings: Settings
) -> None:
    story = site.story("nba-brawl-suspensions")
    saved = ingester.add_url(site.url(story))
    assert saved.status == "added" and saved.title == story.title
    text = (settings.corpus_dir / saved.name).read_text(encoding="utf-8")
    assert text.startswith(
        f"---\ntitle: {story.title}\nurl: {site.url(story)}\npublished: {story.date}\nsource: The Harbour Ledger\n---\n"
    )
    article = load_corpus(settings.corpus_dir).articles[0]
    assert (article.title, article.url, article.published) == (story.title, site.url(story), story.date)
    assert list(settings.corpus_dir.glob(".ingest-*")) == []


def test_the_same_link_again_updates_the_article_in_place(
    site: NewsSite, ingester: Ingester, settings: Settings
) -> None:
    story = site.story("bush-visits-canada")
    first = ingester.add_url(site.url(story))
    assert ingester.add_url(site.url(story) + "?utm_source=telegram#top").status == "unchanged"
    corrected = dataclasses.replace(story, paragraphs=story.paragraphs + ("The visit ended on Wednesday morning.",))
    site.stories[site.stories.index(story)] = corrected
    again = ingester.add_url(site.url(story))
    assert (again.name, again.status) == (first.name, "updated")
    assert files(settings.corpus_dir) == [first.name]
    assert "ended on Wednesday morning" in (settings.corpus_dir / first.name).read_text(encoding="utf-8")


def test_a_redirect_chain_is_followed_to_the_article(site: NewsSite, ingester: Ingester) -> None:
    story = site.story("mst-attack-rondonia")
    saved = ingester.add_url(site.url(f"/go/3{story.path}"))
    assert saved.url == site.url(story) and saved.name == file_name(site.url(story), story.title)


def test_the_same_text_under_another_link_is_a_duplicate(
    site: NewsSite, ingester: Ingester, settings: Settings
) -> None:
    story = site.story("taipei-lantern-festival")
    saved = ingester.add_url(site.url(story))
    with pytest.raises(Duplicate, match=f"already in the corpus as {saved.name}"):
        ingester.add_url(site.url(f"/syndicated/{story.slug}"))
    assert files(settings.corpus_dir) == [saved.name]


def test_file_names_are_stable_and_safe() -> None:
    name = file_name("HTTPS://News.Example.com:443/2024/05/../Élan vital?.html#x", "whatever")
    assert name == file_name("https://news.example.com/2024/05/../Élan vital?.html", "other title")
    assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{8}\.md", name)
    assert file_name("https://e.com/a", "t") != file_name("https://e.com/b", "t")
    assert file_name("https://e.com/12345", "Storm hits the coast").startswith("storm-hits-the-coast-")


# --- every refusal, one line each, nothing written -----------------------------------------------


REFUSALS = [
    ("/premium/afghan-robotics-team", "paywall"),
    ("/world", "not an article"),
    ("/report.pdf", "not an HTML page (it is application/pdf)"),
    ("/huge", "too large (3,0"),
    ("/huge-undeclared", "too large (over the limit of 1,000,000 bytes)"),
    ("/slow", "timeout"),
    ("/loop", "Too many redirects"),
    ("/go/9/2004/11/20/nba-brawl-suspensions", "Too many redirects"),
    ("/no-such-page", "404"),
]


@pytest.mark.parametrize(("path", "reason"), REFUSALS)
def test_pages_that_are_not_articles_are_refused_with_a_reason(
    site: NewsSite, ingester: Ingester, settings: Settings, path: str, reason: str
) -> None:
    if path == "/slow":  # the page takes longer than this deadline (the others get a generous one)
        ingester = Ingester(settings.model_copy(update={"fetch_timeout": 0.3}))
    with pytest.raises(FetchRefused) as refusal:
        ingester.add_url(site.url(path))
    message = str(refusal.value)
    assert reason in message and "\n" not in message
    assert files(settings.corpus_dir) == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://ftp.example.com/news.html", "javascript:alert(1)", "news.example.com/a"]
)
def test_only_http_links_are_fetched(ingester: Ingester, url: str) -> None:
    with pytest.raises(FetchRefused, match="Only http:// and https:// links"):
        ingester.add_url(url)


def test_private_and_loopback_addresses_are_refused_unless_allowed(site: NewsSite, settings: Settings) -> None:
    strict = Ingester(settings.model_copy(update={"allow_private_urls": False}))
    requests = len(site.requests)
    for url in (
        site.url(site.stories[0]),
        site.url(site.stories[0]).replace("127.0.0.1", "localhost"),
        "http://[::1]/a",
        "http://10.1.2.3/a",
        "http://169.254.169.254/latest/meta-data",
    ):
        with pytest.raises(FetchRefused, match="private or local address.*ALLOW_PRIVATE_URLS"):
            strict.add_url(url)
    assert len(site.requests) == requests  # refused before connecting
    assert files(settings.corpus_dir) == []


def test_a_redirect_to_a_private_address_is_refused(site: NewsSite, settings: Settings) -> None:
    """The site itself is trusted here; where it redirects to is checked again."""
    policy = FetchPolicy(timeout=2, trusted_addresses=frozenset({"127.0.0.1"}))
    story = site.stories[0]
    assert Ingester(settings, policy).add_url(site.url(story)).status == "added"
    with pytest.raises(FetchRefused, match=r"private or local address \(127\.0\.0\.2"):
        Ingester(settings, policy).add_url(site.url(f"/away{site.stories[1].path}"))


def test_an_unknown_host_is_refused(settings: Settings) -> None:
    strict = Ingester(settings.model_copy(update={"allow_private_urls": False}))
    with pytest.raises(FetchRefused, match="Cannot find the server"):
        strict.add_url("http://no-such-host.invalid/story")


def test_one_bad_link_does_not_stop_the_others(site: NewsSite, ingester: Ingester) -> None:
    outcomes = ingester.add_many([site.url("/world"), site.url(site.stories[3])])
    assert outcomes[0].saved is None and "not an article" in (outcomes[0].reason or "")
    assert outcomes[1].saved is not None


# --- forwarded text and files ----------------------------------------------------------------------


def test_a_forwarded_post_with_article_text_is_saved(ingester: Ingester, settings: Settings) -> None:
    story_text = "Ferry service resumes\n\n" + "\n\n".join(
        [
            "The island ferry resumed service on Monday after a three-week strike by its crews.",
            "Operators said the first crossing carried 212 passengers and forty cars to the mainland.",
            "The union agreed to a new contract that raises wages by six percent over two years.",
            "Timetables will return to normal by the end of the month, the company said.",
        ]
    )
    saved = ingester.add_text(story_text, "https://t.me/dailynews/42", "Daily news")
    article = parse_article(saved.name, (settings.corpus_dir / saved.name).read_text(encoding="utf-8"))
    assert article.title == "Ferry service resumes" and article.url == "https://t.me/dailynews/42"
    with pytest.raises(NotAnArticle):
        ingester.add_text("Breaking: read this https://example.com/x", "https://t.me/dailynews/43", "Daily news")


def test_a_file_is_added_and_a_copy_of_its_text_is_a_duplicate(
    ingester: Ingester, settings: Settings, tmp_path: Path
) -> None:
    article = "Ferry service resumes\n\nThe island ferry resumed service on Monday after a strike.\n"
    (tmp_path / "ferry.md").write_text(article, encoding="utf-8")
    (tmp_path / "copy.txt").write_text(article, encoding="utf-8")
    assert ingester.add_file(tmp_path / "ferry.md").status == "added"
    with pytest.raises(Duplicate, match="ferry.md"):
        ingester.add_file(tmp_path / "copy.txt")
    (tmp_path / "ferry.pdf").write_bytes(b"%PDF-1.4")
    with pytest.raises(FetchRefused, match="Only .txt and .md"):
        ingester.add_file(tmp_path / "ferry.pdf")
    with pytest.raises(FetchRefused, match="Cannot read .*missing.md: No such file"):
        ingester.add_file(tmp_path / "missing.md")
    assert files(settings.corpus_dir) == ["ferry.md"]


# --- feeds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", ["/feeds/rss.xml", "/feeds/atom.xml"])
def test_a_feed_poll_adds_new_entries_once(site: NewsSite, ingester: Ingester, settings: Settings, feed: str) -> None:
    items = site.rss_items if "rss" in feed else site.atom_items
    items[:] = site.stories[:3]
    assert ingester.feeds.add(site.url(feed))
    first = ingester.poll()
    assert sorted(a.title for a in first.added) == sorted(s.title for s in site.stories[:3])
    assert len(files(settings.corpus_dir)) == 3

    second = ingester.poll()
    assert second.saved == [] and second.refused == [] and second.failed_feeds == []
    assert site.conditional[-1][0] is not None  # asked with the ETag it was given: answered 304

    items.append(site.stories[3])
    third = Ingester(settings).poll()  # a new process: state read back from the feeds file
    assert [a.title for a in third.added] == [site.stories[3].title]
    assert len(files(settings.corpus_dir)) == 4


def test_feed_entries_that_fail_for_a_while_are_tried_again(
    site: NewsSite, ingester: Ingester, settings: Settings
) -> None:
    site.rss_items[:] = site.stories[:1]
    ingester.feeds.add(site.url("/feeds/rss.xml"))
    site.slow_seconds = 1.0
    path = site.stories[0].path
    site.stories[0] = dataclasses.replace(site.stories[0], slug="gone-for-now")  # the link 404s for now
    assert ingester.poll().added == []
    site.stories[0] = dataclasses.replace(site.stories[0], slug=site.rss_items[0].slug)
    assert site.stories[0].path == path
    assert [a.title for a in ingester.poll().added] == [site.stories[0].title]


def test_the_feed_list_survives_and_configured_feeds_stay(tmp_path: Path) -> None:
    path = tmp_path / "feeds.json"
    store = FeedStore(path, ["https://news.example.com/rss"])
    assert store.add("https://other.example.com/atom.xml")
    assert not store.add("https://other.example.com/atom.xml#again")
    again = FeedStore(path, ["https://news.example.com/rss"])
    assert [f.url for f in again.feeds()] == ["https://news.example.com/rss", "https://other.example.com/atom.xml"]
    with pytest.raises(FeedError, match="FEEDS setting"):
        again.remove("https://news.example.com/rss")
    assert again.remove("https://other.example.com/atom.xml") and not again.remove("https://other.example.com/atom.xml")
    assert [f.url for f in FeedStore(path).feeds()] == []
    with pytest.raises(FetchRefused, match="Only http"):
        store.add("file:///etc/passwd")


def test_a_page_that_is_not_a_feed_is_reported(site: NewsSite, ingester: Ingester) -> None:
    ingester.feeds.add(site.url("/report.pdf"))
    report = ingester.poll()
    assert "not a feed" in (report.failed_feeds[0].reason or "")


# --- command line ----------------------------------------------------------------------------------


def test_cli_add_refusals_exit_1_and_change_nothing(site: NewsSite, settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv("ALLOW_PRIVATE_URLS", "true")
    result = CliRunner().invoke(
        cli, ["--corpus-dir", str(settings.corpus_dir), "add", site.url("/world"), "ftp://x.example/a"]
    )
    assert result.exit_code == 1
    assert "not added: " + site.url("/world") + ": That page is not an article" in result.output
    assert "Only http:// and https://" in result.output and "Traceback" not in result.output
    assert files(settings.corpus_dir) == []


def test_cli_feeds_without_feeds_says_what_to_do(settings: Settings, monkeypatch) -> None:
    monkeypatch.delenv("FEEDS", raising=False)
    result = CliRunner().invoke(cli, ["--corpus-dir", str(settings.corpus_dir), "feeds", "--once"])
    assert result.exit_code == 1 and "set FEEDS" in result.output


def test_feeds_setting_lists_urls_and_names_a_bad_one() -> None:
    settings = Settings(_env_file=None, feeds="https://a.example/rss, https://b.example/atom.xml")
    assert settings.feeds == ("https://a.example/rss", "https://b.example/atom.xml")
    with pytest.raises(ValueError, match="FEEDS must be http\\(s\\) feed URLs.*'file:///etc/passwd'"):
        Settings(_env_file=None, feeds="https://a.example/rss file:///etc/passwd")


def test_the_same_page_extracts_the_same_however_often(site: NewsSite) -> None:
    """A long-running bot sees pages again (updates, feeds): extraction must not remember them."""
    story = site.story("nba-brawl-suspensions")
    page = article_page(story, "https://news.test", site.stories)
    first = extract_article(page, "https://news.test" + story.path)
    for _ in range(4):
        assert extract_article(page, "https://news.test" + story.path).paragraphs == first.paragraphs


def test_a_checked_address_is_the_one_connected_to() -> None:
    """No second DNS lookup between the check and the connection (DNS rebinding)."""
    from bot.ingest.fetch import _pinned

    assert _pinned("https://news.example.com/a?b=1#c", "93.184.216.34") == (
        "https://93.184.216.34/a?b=1",
        {"Host": "news.example.com"},
        {"sni_hostname": "news.example.com"},
    )
    assert _pinned("http://news.example.com:8080/", "2606:2800::1") == (
        "http://[2606:2800::1]:8080/",
        {"Host": "news.example.com:8080"},
        {},
    )
    assert _pinned("http://news.example.com/x", None) == ("http://news.example.com/x", {}, {})
