"""News in over Telegram, end to end: /add <url>, links and forwarded posts, /feed and feed polls.

The bot runs against the fake Bot API; the news pages come from the local news site (tests/web).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from bot.service import QAService
from bot.settings import Settings
from bot.telegram import news
from bot.telegram.format import REFUSED
from tests.web.newssite import NewsSite, serve

from .conftest import Running, start_running
from .fake_api import FakeBotApi
from .updates import ADMIN_ID, CHANNEL, CHANNEL_ID, USER_ID

NBA_QUESTION = "How many games was Stephen Jackson suspended for after the brawl?"
FETCH_TIMEOUT = 3.0  # generous for a loaded machine; only the slow page takes longer


@pytest.fixture(scope="module")
def site_server() -> Iterator[NewsSite]:
    yield from serve()


@pytest.fixture
def site(site_server: NewsSite) -> NewsSite:
    site_server.rss_items, site_server.atom_items = [], []
    site_server.conditional.clear()
    site_server.slow_seconds = FETCH_TIMEOUT + 1.0  # the slow page outlasts the deadline
    return site_server


@pytest.fixture
async def bot(tg_settings: Settings, tg_service: QAService, fake_api: FakeBotApi) -> AsyncIterator[Running]:
    """The bot with links allowed to the local site and new feed articles announced in CHANNEL."""
    settings = tg_settings.model_copy(
        update={
            "allow_private_urls": True,
            "feed_announce_chat": str(CHANNEL_ID),
            "fetch_timeout": FETCH_TIMEOUT,
        }
    )
    async with start_running(settings, tg_service, fake_api) as running:
        yield running


def corpus_files(running: Running) -> list[str]:
    return sorted(p.name for p in running.settings.corpus_dir.iterdir())


async def say(running: Running, text: str | None, user_id: int, **extra: object) -> str:
    """Send a private message; the bot's next reply in that chat (unescaped)."""
    before = len(running.sent())
    running.send.private(text, user_id=user_id, **extra)
    replies = await running.replies(count=before + 1)
    return html.unescape(replies[before]["text"])


def forwarded(text: str, **extra: object) -> dict:
    origin = {"type": "channel", "chat": CHANNEL, "message_id": 42, "date": int(time.time())}
    return {"forward_origin": origin, **extra}


# --- links ---------------------------------------------------------------------------------------


async def test_admin_add_of_a_link_makes_its_article_answerable(bot: Running, site: NewsSite) -> None:
    story = site.story("nba-brawl-suspensions")
    assert "30 games" not in await say(bot, NBA_QUESTION, USER_ID)
    reply = await say(bot, f"/add {site.url(story)}", ADMIN_ID)
    assert reply.startswith(f"Added \u201c{story.title}\u201d (") and "sentences)." in reply
    sentences = int(reply.rsplit("(", 1)[1].split()[0])
    assert sentences >= 10
    answer = await say(bot, NBA_QUESTION, USER_ID)
    assert "Stephen Jackson for 30 games" in answer and story.title in answer

    again = await say(bot, f"/add {site.url('/go/2' + story.path)}", ADMIN_ID)
    assert again == f"Already up to date: \u201c{story.title}\u201d ({sentences} sentences)."
    assert len([n for n in corpus_files(bot) if n.startswith("nba-")]) == 1


async def test_admin_link_in_private_is_added(bot: Running, site: NewsSite) -> None:
    story = site.story("delta-4-heavy-maiden-launch")
    reply = await say(bot, f"  {site.url(story)} ", ADMIN_ID)
    assert reply.startswith(f"Added \u201c{story.title}\u201d")


async def test_each_refusal_is_one_line_and_adds_nothing(bot: Running, site: NewsSite) -> None:
    before = corpus_files(bot)
    index = bot.service.answerer.index
    links = " ".join(site.url(p) for p in ("/premium/afghan-robotics-team", "/world", "/report.pdf", "/slow"))
    reply = await say(bot, f"/add {links} ftp://example.com/x", ADMIN_ID)
    assert reply.split("\n") == [
        "Not added: That article is behind a paywall: only a teaser is visible, so nothing was added.",
        "Not added: That page is not an article (too little article text on it), so nothing was added.",
        "Not added: That link is not an HTML page (it is application/pdf).",
        f"Not added: The site did not answer within {FETCH_TIMEOUT:g} s (timeout).",
        "Not added: Only http:// and https:// links can be added, not ftp: (ftp://example.com/x).",
    ]
    assert corpus_files(bot) == before and bot.service.answerer.index is index


async def test_add_without_a_link_shows_how(bot: Running) -> None:
    assert await say(bot, "/add", ADMIN_ID) == news.USAGE_ADD


# --- forwarded channel posts -------------------------------------------------------------------------


async def test_a_forwarded_post_that_is_an_article_is_added(bot: Running) -> None:
    post = "\n".join(
        [
            "Ferry service resumes after strike",
            "The island ferry resumed service on Monday after a three-week strike by its crews.",
            "Operators said the first crossing carried 212 passengers and forty cars to the mainland.",
            "The union agreed to a new contract that raises wages by six percent over two years.",
            "Timetables will return to normal by the end of the month, the company said.",
        ]
    )
    reply = await say(bot, post, ADMIN_ID, **forwarded(post))
    assert reply.startswith("Added \u201cFerry service resumes after strike\u201d (4 sentences)")
    answer = await say(bot, "How many passengers did the first ferry crossing carry?", USER_ID)
    assert "212 passengers" in answer


async def test_a_forwarded_post_with_one_link_adds_the_linked_article(bot: Running, site: NewsSite) -> None:
    story = site.story("bush-visits-canada")
    url = site.url(story)
    text = f"Worth a read: {url}"
    entities = [{"type": "url", "offset": len("Worth a read: "), "length": len(url)}]
    reply = await say(bot, text, ADMIN_ID, **forwarded(text, entities=entities))
    assert reply.startswith(f"Added \u201c{story.title}\u201d")


async def test_a_forwarded_post_with_neither_is_refused_politely(bot: Running) -> None:
    text = "Big news today! Stay tuned."
    reply = await say(bot, text, ADMIN_ID, **forwarded(text))
    assert "not an article" in reply and "single link" in reply


# --- feeds ---------------------------------------------------------------------------------------------


async def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def test_a_feed_poll_adds_new_entries_once_and_announces_them(bot: Running, site: NewsSite) -> None:
    site.atom_items[:] = [site.story("nba-brawl-suspensions"), site.story("mst-attack-rondonia")]
    feed_url = site.url("/feeds/atom.xml")
    assert (await say(bot, f"/feed add {feed_url}", ADMIN_ID)).startswith("Feed added; polling it now")
    announcement = (await bot.reply(chat_id=CHANNEL_ID))["text"]
    assert (
        "New articles" in announcement
        and html.escape(site.story("mst-attack-rondonia").title, quote=False) in announcement
    )
    assert "30 games" in await say(bot, NBA_QUESTION, USER_ID)
    files = corpus_files(bot)

    bot.app.job_queue.run_once(news.poll_feeds, 0)  # the next scheduled poll: nothing new
    await wait_until(lambda: len(site.conditional) >= 3)  # the check at /feed add, the first poll, this one
    await bot.quiet()
    assert len([m for m in bot.sent() if m.get("chat_id") == CHANNEL_ID]) == 1 and corpus_files(bot) == files

    listing = await say(bot, "/feeds", ADMIN_ID)
    assert feed_url in listing and "polled every 30 minutes" in listing
    assert await say(bot, f"/feed remove {feed_url}", ADMIN_ID) == "Feed removed."
    assert "No feeds yet" in await say(bot, "/feeds", ADMIN_ID)


async def test_feed_add_refuses_what_is_not_a_feed(bot: Running, site: NewsSite) -> None:
    reply = await say(bot, f"/feed add {site.url('/report.pdf')}", ADMIN_ID)
    assert reply == "Feed not added: That link is not a feed (it is application/pdf)."
    assert await say(bot, "/feed", ADMIN_ID) == news.USAGE_FEED
    assert not bot.settings.feeds_path.exists()


# --- everyone else -----------------------------------------------------------------------------------


async def test_non_admins_are_refused_and_change_nothing(bot: Running, site: NewsSite) -> None:
    before, requests = corpus_files(bot), len(site.requests)
    index = bot.service.answerer.index
    story_url = site.url(site.story("nba-brawl-suspensions"))
    post = "Ferry news\nThe island ferry resumed service on Monday. It carried 212 people. Wages rise."
    for text, extra in [
        (f"/add {story_url}", {}),
        (story_url, {}),
        (post, forwarded(post)),
        (f"/feed add {site.url('/feeds/rss.xml')}", {}),
        ("/feeds", {}),
    ]:
        assert await say(bot, text, USER_ID, **extra) == REFUSED
    assert corpus_files(bot) == before and len(site.requests) == requests
    assert bot.service.answerer.index is index and not bot.settings.feeds_path.exists()
