"""News in over Telegram: `/add URL`, links and forwarded channel posts in private, `/feed`, feed polls.

Thin adapters over `bot.ingest` (fetching and saving run in a thread; the index is rebuilt once
per batch, under the same lock as /reindex).
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from dataclasses import dataclass, field

from telegram import Message, MessageEntity, MessageOriginChannel, Update
from telegram.error import TelegramError
from telegram.ext import filters

from ..ingest import (
    FeedError,
    FeedState,
    FetchRefused,
    Ingester,
    NotAnArticle,
    Outcome,
    SavedArticle,
    read_feed,
    reindex,
    sentence_counts,
)
from ..ingest.fetch import check_url
from .context import BotApplication, BotContext
from .format import failed_html
from .handlers import REBUILD_ERRORS, command_argument, message_of, refused
from .sending import reply_html, reply_plain, send_html, typing

log = logging.getLogger(__name__)

USAGE_ADD = "Usage: /add https://… (one or more links), or send an article file with the caption /add."
USAGE_FEED = "Usage: /feed add https://…/rss, /feed remove https://…/rss, or /feeds to list them."
MAX_LINKS = 10
POLL_JOB = "feeds"


@dataclass
class News:
    """The ingester and the lock that keeps feed polls from overlapping."""

    ingester: Ingester
    polling: asyncio.Lock = field(default_factory=asyncio.Lock)


class _ForwardedChannelPost(filters.MessageFilter):
    """Messages forwarded from a channel."""

    def filter(self, message: Message) -> bool:
        return isinstance(message.forward_origin, MessageOriginChannel)


FORWARDED_POST = _ForwardedChannelPost(name="ForwardedChannelPost")
JUST_A_LINK = filters.Regex(re.compile(r"^\s*https?://\S+\s*$", re.IGNORECASE))


# --- replies --------------------------------------------------------------------------------------


def _article_line(saved: SavedArticle, sentences: int) -> str:
    verb = {"added": "Added", "updated": "Updated", "unchanged": "Already up to date:"}[saved.status]
    return f"{verb} \u201c{html.escape(saved.title)}\u201d ({sentences} sentences)."


def outcomes_html(outcomes: list[Outcome], counts: dict[str, int]) -> str:
    """One line per link: what was added, or why not."""
    lines = []
    for outcome in outcomes:
        if outcome.saved is not None:
            lines.append(_article_line(outcome.saved, counts.get(outcome.saved.name, 0)))
        else:
            lines.append(f"Not added: {html.escape(outcome.reason or '')}")
    return "\n".join(lines)


def announce_html(saved: list[SavedArticle]) -> str:
    """The "new articles" post after a feed poll."""
    lines = ["\U0001f4f0 <b>New articles</b>"]
    for article in saved:
        title = html.escape(article.title)
        lines.append(f'\u2022 <a href="{html.escape(article.url, quote=True)}">{title}</a>')
    return "\n".join(lines)


# --- the work, off the event loop -----------------------------------------------------------------


async def _reindex(context: BotContext) -> str | None:
    """Rebuild the index once for the articles just saved; the failure text if it failed."""
    async with context.core.reindex_lock:
        try:
            await asyncio.to_thread(reindex, context.service)
        except REBUILD_ERRORS as exc:
            log.warning("reindex after adding articles failed, still serving the previous index: %s", exc)
            return failed_html("Reindex", exc) + "\nThe articles are saved; /reindex will pick them up."
    return None


async def _finish(message: Message, context: BotContext, outcomes: list[Outcome]) -> None:
    """Reindex if anything changed, then reply with one line per link."""
    changed = [o.saved for o in outcomes if o.saved is not None and o.saved.status != "unchanged"]
    problem = await _reindex(context) if changed else None
    names = [o.saved.name for o in outcomes if o.saved is not None]
    counts = sentence_counts(context.service, names) if names else {}
    for saved in changed:
        log.info("article %s %s from a link by an admin", saved.name, saved.status)
    await reply_html(message, outcomes_html(outcomes, counts) + (f"\n{problem}" if problem else ""))


def _news(context: BotContext) -> News:
    news = context.core.news
    assert news is not None, "build_application attaches News"
    return news


async def _add_links(message: Message, context: BotContext, urls: list[str]) -> None:
    ingester = _news(context).ingester
    async with typing(message):
        outcomes = await asyncio.to_thread(ingester.add_many, urls)
        await _finish(message, context, outcomes)


# --- callbacks -----------------------------------------------------------------------------------


async def add_links(update: Update, context: BotContext) -> None:
    """Fetch the articles of `/add URL…` into the corpus and reindex (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    urls = command_argument(message).split()
    if not urls:
        await reply_plain(message, USAGE_ADD)
        return
    if len(urls) > MAX_LINKS:
        await reply_plain(message, f"At most {MAX_LINKS} links at once, please.")
        return
    await _add_links(message, context, urls)


async def private_link(update: Update, context: BotContext) -> None:
    """Add the article a private message links to (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    await _add_links(message, context, [(message.text or "").strip()])


def _post_link(message: Message) -> str:
    origin = message.forward_origin
    assert isinstance(origin, MessageOriginChannel)
    chat = origin.chat
    if chat.username:
        return f"https://t.me/{chat.username}/{origin.message_id}"
    return f"https://t.me/c/{str(chat.id).removeprefix('-100')}/{origin.message_id}"


def _links(message: Message) -> list[str]:
    entities = (
        message.parse_entities([MessageEntity.URL, MessageEntity.TEXT_LINK])
        if message.text
        else message.parse_caption_entities([MessageEntity.URL, MessageEntity.TEXT_LINK])
    )
    found = [entity.url if entity.type == MessageEntity.TEXT_LINK else text for entity, text in entities.items()]
    return list(dict.fromkeys(u for u in found if u))


async def forwarded_post(update: Update, context: BotContext) -> None:
    """Add a forwarded channel post: its text when it is an article, else the one link in it (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    ingester = _news(context).ingester
    origin = message.forward_origin
    assert isinstance(origin, MessageOriginChannel)
    text = message.text or message.caption or ""
    async with typing(message):
        try:
            saved = await asyncio.to_thread(ingester.add_text, text, _post_link(message), origin.chat.title)
            outcome = Outcome(_post_link(message), saved=saved)
        except NotAnArticle as exc:
            links = _links(message)
            if len(links) != 1:
                await reply_plain(message, str(exc))
                return
            outcome = (await asyncio.to_thread(ingester.add_many, links))[0]
        except FetchRefused as exc:  # the same text is already in the corpus
            outcome = Outcome(_post_link(message), reason=str(exc))
        await _finish(message, context, [outcome])


async def list_feeds(update: Update, context: BotContext) -> None:
    """List the feeds being polled (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    try:
        feeds = await asyncio.to_thread(_news(context).ingester.feeds.feeds)
    except FeedError as exc:
        await reply_plain(message, str(exc))
        return
    if not feeds:
        await reply_plain(message, "No feeds yet. Add one with /feed add https://…/rss")
        return
    minutes = context.settings.feed_poll_minutes
    lines = [f"Feeds, polled every {minutes:g} minutes:"]
    lines += [f"\u2022 {html.escape(f.url)}" + (f" ({html.escape(f.title)})" if f.title else "") for f in feeds]
    await reply_html(message, "\n".join(lines))


async def feed(update: Update, context: BotContext) -> None:
    """`/feed add URL` checks and adds a feed, then polls it; `/feed remove URL` stops polling it (admins only)."""
    message = message_of(update)
    if await refused(update, context):
        return
    parts = command_argument(message).split()
    if len(parts) != 2 or parts[0].lower() not in ("add", "remove"):
        await reply_plain(message, USAGE_FEED)
        return
    action, url = parts[0].lower(), parts[1]
    store = _news(context).ingester.feeds
    try:
        if action == "remove":
            removed = await asyncio.to_thread(store.remove, url)
            await reply_plain(message, "Feed removed." if removed else "That feed is not in the list (see /feeds).")
            return
        url = check_url(url)
        async with typing(message):
            await asyncio.to_thread(read_feed, FeedState(url), _news(context).ingester.policy)  # is it a feed?
            added = await asyncio.to_thread(store.add, url)
    except (FeedError, FetchRefused) as exc:
        await reply_plain(message, f"Feed not added: {exc}" if action == "add" else str(exc))
        return
    if not added:
        await reply_plain(message, "That feed is already in the list.")
        return
    await reply_plain(message, f"Feed added; polling it now and every {context.settings.feed_poll_minutes:g} minutes.")
    if context.job_queue is not None:
        # PTB types CallbackContext.job_queue as JobQueue[ST] with ST unbound, so no callback type matches
        context.job_queue.run_once(poll_feeds, 0, name=f"{POLL_JOB}-now")  # type: ignore[arg-type]


async def poll_feeds(context: BotContext) -> None:
    """Poll every feed once, add the new entries' articles, reindex once, announce them (job)."""
    news = _news(context)
    if news.polling.locked():
        return
    async with news.polling:
        report = await asyncio.to_thread(news.ingester.poll)
        for failed in report.failed_feeds:
            log.warning("feed %s: %s", failed.source, failed.reason)
        for outcome in report.refused:
            log.info("feed entry %s not added: %s", outcome.source, outcome.reason)
        if not report.added:
            return
        problem = await _reindex(context)
        log.info("feed poll added %d articles%s", len(report.added), " (reindex failed)" if problem else "")
        chat = context.settings.feed_announce_chat
        if chat and not problem:
            target: int | str = int(chat) if chat.lstrip("-").isdigit() else chat
            try:
                await send_html(context.bot, target, announce_html(report.added))  # type: ignore[arg-type]
            except TelegramError as exc:
                log.warning("could not post the new articles to %s: %s", chat, exc)


def schedule_feeds(application: BotApplication) -> None:
    """Poll the feeds every FEED_POLL_MINUTES with the application's job queue."""
    if application.job_queue is None:
        log.warning("feeds are not polled: install python-telegram-bot[job-queue]")
        return
    seconds = application.bot_data.core.settings.feed_poll_minutes * 60
    application.job_queue.run_repeating(poll_feeds, interval=seconds, first=min(seconds, 60.0), name=POLL_JOB)
