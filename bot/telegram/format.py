"""Telegram HTML for everything the bot says; every piece of article or user text is escaped."""

from __future__ import annotations

import hashlib
import html
import re
import time
from collections.abc import Iterable

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
)
from telegram.constants import ParseMode

from ..answer import Answer
from ..corpus import Article
from ..index import BuildReport
from ..render import to_telegram_html
from ..service import QAService

SOURCE_PREFIX = "src"
MAX_LISTED_ARTICLES = 30

USAGE_ASK = "Usage: /ask your question \u2014 for example: /ask Where did the festival take place?"
REFUSED = "Sorry, only the bot's administrators can do that."
RATE_LIMITED = "You're asking faster than I can keep up with \u2014 please wait a minute and ask again."
TEXT_ONLY = "Please send me your question as text."
UNKNOWN_COMMAND = "I don't know that command. Send me a question, or /help."
REINDEX_BUSY = "A reindex is already running; try again when it has finished."
SOURCE_GONE = "That sentence is no longer in the articles (they were re-indexed). Ask again."


def answer_html(answer: Answer) -> str:
    """The answer: quoted sentence(s) first, numbered citations after."""
    return to_telegram_html(answer)


def inline_result(answer: Answer) -> InlineQueryResultArticle:
    """An inline result that inserts the quoted, cited answer (cut to one message)."""
    if answer.answered:
        first = answer.citations[0]
        title = _shorten(first.text, 60)
        description = f"[1] {first.title}" + (f" (+{len(answer.citations) - 1})" if len(answer.citations) > 1 else "")
    else:
        title, description = answer.answer, "Nothing in the articles answers this question."
    return InlineQueryResultArticle(
        id=hashlib.sha1(answer.question.encode("utf-8")).hexdigest()[:32],
        title=title,
        description=_shorten(description, 100),
        input_message_content=InputTextMessageContent(
            pieces(answer_html(answer))[0],
            parse_mode=ParseMode.HTML,
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        ),
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def source_key(doc: str, text: str) -> str:
    """A short key naming a cited sentence by content, stable across reindexing."""
    return hashlib.sha1(f"{doc}\0{text}".encode()).hexdigest()[:12]


def source_data(sentence_id: int, key: str) -> str:
    """callback_data of a sources button (well under Telegram's 64 bytes)."""
    return f"{SOURCE_PREFIX}:{sentence_id}:{key}"


def parse_source_data(data: str) -> tuple[int, str] | None:
    """(sentence_id, key) from a sources button's callback_data, or None."""
    match = re.fullmatch(rf"{SOURCE_PREFIX}:(\d+):([0-9a-f]{{12}})", data)
    return (int(match.group(1)), match.group(2)) if match else None


def sources_keyboard(answer: Answer) -> InlineKeyboardMarkup | None:
    """One "Source n" button per citation of an answered question."""
    if not answer.answered or not answer.citations:
        return None
    buttons = [
        InlineKeyboardButton(
            f"\U0001f4c4 Source {c.n}", callback_data=source_data(c.sentence_id, source_key(c.doc, c.text))
        )
        for c in answer.citations
        if c.sentence_id >= 0
    ]
    return InlineKeyboardMarkup([buttons]) if buttons else None


def _title_html(article: Article) -> str:
    title = html.escape(article.title)
    if article.url and article.url.startswith(("http://", "https://")):
        return f'<a href="{html.escape(article.url, quote=True)}">{title}</a>'
    return title


def passage_html(article: Article, paragraph: int, sentences: list[str], cited: str) -> str:
    """The passage around a cited sentence, the cited one in bold, one sentence a line."""
    lines = [f"\U0001f4c4 {_title_html(article)}, \u00b6{paragraph}"]
    for sentence in sentences:
        text = html.escape(sentence)
        lines.append(f"<b>{text}</b>" if sentence == cited else text)
    return "\n".join(lines)


def help_html(bot_username: str, articles: Iterable[Article]) -> str:
    """What the bot does, how to ask in each kind of chat, and the articles it knows."""
    name = html.escape(bot_username)
    listed = sorted(articles, key=lambda a: a.title.lower())
    lines = [
        "I answer questions about news articles, asked in English, by quoting the sentences that answer them, "
        "with numbered sources.",
        "",
        "\u2022 Here: just send me a question.",
        f"\u2022 In a group: <code>/ask question</code>, mention @{name}, or reply to my message.",
        f"\u2022 In any chat: type <code>@{name} question</code>.",
        "Tap a \U0001f4c4 Source button to read the passage around a quote.",
        "",
        f"<b>Articles I know ({len(listed)}):</b>",
    ]
    lines += [f"\u2022 {_title_html(a)}" for a in listed[:MAX_LISTED_ARTICLES]]
    if len(listed) > MAX_LISTED_ARTICLES:
        lines.append(f"\u2026 and {len(listed) - MAX_LISTED_ARTICLES} more.")
    return "\n".join(lines)


def stats_html(service: QAService, answered: int) -> str:
    """The /stats reply: articles, sentences, uptime, questions answered, when the index was built."""
    index = service.answerer.index
    lines = [
        f"Articles: {len(index.articles)}",
        f"Sentences: {len(index.sentences)}",
        f"Uptime: {_duration(time.monotonic() - service.started)}",
        f"Questions answered: {answered}",
    ]
    built_at = service.index.manifest.get("built_at")
    if built_at:
        lines.append(f"Index built: {html.escape(str(built_at))}")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def reindex_html(report: BuildReport, added_file: str | None = None, replaced: bool = False) -> str:
    """What a rebuild changed: articles, sentences, time taken, files added/changed/removed."""
    lines = []
    if added_file:
        verb = "Replaced" if replaced else "Added"
        lines.append(f"{verb} <code>{html.escape(added_file)}</code>.")
    lines.append(
        f"Reindexed in {report.seconds:.1f} s: {report.articles} articles, "
        f"{report.sentences} sentences ({report.embedded} newly embedded)."
    )
    for label, docs in (("Added", report.added), ("Changed", report.changed), ("Removed", report.removed)):
        if docs:
            lines.append(f"{label}: " + ", ".join(html.escape(d) for d in docs))
    if not (report.added or report.changed or report.removed):
        lines.append("No article changed.")
    for problem in report.skipped:
        lines.append(f"Skipped: {html.escape(problem)}")
    return "\n".join(lines)


def failed_html(what: str, error: Exception) -> str:
    """A failed rebuild or upload, said plainly; the old index keeps answering."""
    return f"{html.escape(what)} failed: {html.escape(str(error))}\nI'm still answering from the previous index."


_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def html_to_plain(text: str) -> str:
    """Telegram HTML as plain text (links keep their address), for when HTML is rejected."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})", text)
    return html.unescape(_TAG.sub("", text))


_HTML_TOKEN = re.compile(r"<[^>]*>|&#?\w+;|[^<&]", re.DOTALL)
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")
MESSAGE_LIMIT = 4096


def pieces(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Telegram HTML cut into messages of at most `limit` characters, each valid on its own.

    Cuts at a line break where there is one (else at a space), never inside a tag or an
    entity; a tag open at a cut (a <blockquote> around a long sentence) is closed at the end of
    one piece and opened again at the start of the next.
    """
    if len(text) <= limit:
        return [text] if text else [""]
    out: list[str] = []
    tokens: list[str] = []  # the current piece
    stacks: list[tuple[str, ...]] = []  # the open tags after each token
    opened: tuple[str, ...] = ()  # open tags at the start of the current piece
    size = 0

    def closers(stack: tuple[str, ...]) -> str:
        return "".join(f"</{_TAG_NAME.match(tag).group(1)}>" for tag in reversed(stack))  # type: ignore[union-attr]

    for token in _HTML_TOKEN.findall(text):
        stack = stacks[-1] if stacks else opened
        if token.startswith("</"):
            after = stack[:-1]
        elif token.startswith("<") and not token.endswith("/>"):
            after = stack + (token,)
        else:
            after = stack
        if size + len(token) + len(closers(after)) > limit and tokens:
            cut = _cut_at(tokens)
            head, tail = tokens[:cut], tokens[cut:]
            at = stacks[cut - 1]
            out.append("".join(head) + closers(at))
            while tail and tail[0] in (" ", "\n"):
                tail.pop(0)
                stacks.pop(cut)
            opened = at
            tokens = list(at) + tail
            stacks = [at[: n + 1] for n in range(len(at))] + stacks[cut:]
            size = sum(map(len, tokens))
            stack = stacks[-1] if stacks else opened
        tokens.append(token)
        stacks.append(after)
        size += len(token)
    if any(t.strip() for t in tokens if not t.startswith("<")):
        out.append("".join(tokens) + closers(stacks[-1] if stacks else opened))
    return out


def _cut_at(tokens: list[str]) -> int:
    """Where to end a full piece: after its last line break, else its last space, else at its end."""
    for sep in ("\n", " "):
        for n in range(len(tokens) - 1, len(tokens) // 2, -1):
            if tokens[n] == sep:
                return n
    return len(tokens)
