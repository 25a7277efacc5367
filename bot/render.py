"""Render an Answer for a terminal, as JSON, or as Telegram HTML."""

from __future__ import annotations

import html
import json
import textwrap

from .answer import Answer, Citation

TELEGRAM_LIMIT = 4096


def _where(c: Citation) -> str:
    return f"{c.title}, paragraph {c.paragraph}, sentence {c.sentence}"


def to_terminal(answer: Answer, width: int = 88) -> str:
    """Plain text: the quoted sentence(s) first, numbered, then where each comes from."""
    if not answer.answered:
        return f"{answer.answer} I found nothing in the articles that answers: {answer.question}"
    lines = []
    for c in answer.citations:
        lines.append(textwrap.fill(f"[{c.n}] {_quoted(c.text)}", width, subsequent_indent="    "))
    lines.append("")
    first: dict[str, int] = {}  # article -> the citation that named it
    for c in answer.citations:
        if c.doc in first:  # the title (often long) once; later citations point back to it
            lines.append(f"[{c.n}] same article as [{first[c.doc]}], paragraph {c.paragraph}, sentence {c.sentence}")
            continue
        first[c.doc] = c.n
        source = f"[{c.n}] {_where(c)} ({c.doc})" + (f", {c.source}" if c.source else "")
        lines.append(source + (f" {c.url}" if c.url else ""))
    return "\n".join(lines)


_QUOTES = '\u201c\u201d\u201e"'


def _quoted(text: str) -> str:
    """The sentence in curly quotes, or as it is when it has quotation marks of its own (no ““…)."""
    if any(mark in text for mark in _QUOTES):
        return text
    return f"\u201c{text}\u201d"


def to_json(answer: Answer) -> str:
    """One line of JSON in the `ask --json` contract."""
    return json.dumps(answer.to_dict(), ensure_ascii=False)


def to_telegram_html(answer: Answer) -> str:
    """Telegram HTML: quotes first, citations after; every piece of text escaped."""
    if not answer.answered:
        return "\U0001f50e " + html.escape(answer.answer) + " I couldn't find an answer to that in the articles I know."
    parts = [f"<blockquote>[{c.n}] {html.escape(c.text)}</blockquote>" for c in answer.citations]
    sources = []
    for c in answer.citations:
        title = html.escape(c.title)
        if c.url and c.url.startswith(("http://", "https://")):
            title = f'<a href="{html.escape(c.url, quote=True)}">{title}</a>'
        source = f", {html.escape(c.source)}" if c.source else ""
        sources.append(f"[{c.n}] {title}, \u00b6{c.paragraph} s{c.sentence}{source}")
    return "\n".join(parts) + "\n" + "\n".join(sources)


def split_message(text: str, limit: int = TELEGRAM_LIMIT) -> list[str]:
    """Split text into pieces of at most `limit` characters, at line breaks where possible."""
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit}")
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:  # a single over-long line: cut at a space if there is one
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:cut])
            line = line[cut:].lstrip()
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces
