"""Rendering answers: terminal text, the JSON contract, Telegram HTML and message splitting."""

from __future__ import annotations

import html
import json
import random
import re

import pytest

from bot.answer import NOT_FOUND, Answer, Citation
from bot.render import TELEGRAM_LIMIT, split_message, to_json, to_telegram_html, to_terminal

NASTY = "Use <b>bold</b> & \"quotes\" or 'single' <script>alert(1)</script>"


def _citation(n=1, text="The festival ends on Sunday.", title="Harbour festival", url=None, **kw):
    values = dict(doc="harbour.md", paragraph=3, sentence=1, score=0.9123)
    values.update(kw)
    return Citation(n=n, title=title, text=text, url=url, **values)


def _answer(*citations, question="When does it end?"):
    text = " ".join(c.text for c in citations)
    return Answer(question, True, text, tuple(citations), confidence=0.9)


DECLINED = Answer("Who won the 2018 World Cup?", False, NOT_FOUND, (), 0.02)


# --- Telegram HTML -------------------------------------------------------------------------


def _visible_text(markup: str) -> str:
    """What Telegram shows: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup))


def _tags(markup: str) -> list[str]:
    return re.findall(r"</?([a-z]+)", markup)


def test_citation_text_and_title_are_escaped():
    markup = to_telegram_html(_answer(_citation(text=NASTY, title="Q&A: <i>Rates</i>")))
    assert "<b>" not in markup and "<script>" not in markup and "<i>" not in markup
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; " in markup
    assert "Q&amp;A: &lt;i&gt;Rates&lt;/i&gt;" in markup
    # only the renderer's own tags remain, and the reader sees the original text
    assert set(_tags(markup)) <= {"blockquote", "a"}
    visible = _visible_text(markup)
    assert NASTY in visible and "Q&A: <i>Rates</i>" in visible


def test_link_url_is_quoted_and_only_http_links_are_made():
    url = 'https://example.com/a?b=1&c="x"'
    markup = to_telegram_html(_answer(_citation(url=url)))
    assert '<a href="https://example.com/a?b=1&amp;c=&quot;x&quot;">Harbour festival</a>' in markup

    markup = to_telegram_html(_answer(_citation(url="javascript:alert(1)")))
    assert "<a" not in markup and "javascript" not in markup


def test_html_quotes_first_then_sources_in_rank_order():
    first = _citation(1, text="Sentence one.", paragraph=2, sentence=1)
    second = _citation(2, text="Sentence two.", title="Other & Co", doc="other.md", paragraph=5, sentence=3)
    lines = to_telegram_html(_answer(first, second)).split("\n")
    assert lines == [
        "<blockquote>[1] Sentence one.</blockquote>",
        "<blockquote>[2] Sentence two.</blockquote>",
        "[1] Harbour festival, \u00b62 s1",
        "[2] Other &amp; Co, \u00b65 s3",
    ]


def test_declined_answer_in_html_has_no_quote_and_is_escaped():
    markup = to_telegram_html(Answer("<b>?</b>", False, "Nothing & nobody <b>", ()))
    assert "blockquote" not in markup
    assert "Nothing &amp; nobody &lt;b&gt;" in markup


# --- terminal and JSON -----------------------------------------------------------------------


def test_terminal_shows_quotes_then_where_they_come_from():
    out = to_terminal(_answer(_citation(url="https://example.com/harbour")))
    assert out.splitlines() == [
        "[1] \u201cThe festival ends on Sunday.\u201d",
        "",
        "[1] Harbour festival, paragraph 3, sentence 1 (harbour.md) https://example.com/harbour",
    ]


def test_terminal_names_an_article_once_and_quotes_a_quotation_once():
    title = "The harbour festival of the old port town opens with tall ships, fireworks and a grand parade"
    out = to_terminal(
        _answer(
            _citation(1, text="\u201cI believe it will grow,\u201d said the mayor.", title=title, paragraph=1),
            _citation(2, text="Other news.", title="Ferry strike", doc="ferry.md", paragraph=2),
            _citation(3, text="The festival ends on Sunday.", title=title, paragraph=3, sentence=2),
        )
    )
    assert out.splitlines() == [
        "[1] \u201cI believe it will grow,\u201d said the mayor.",  # not \u201c\u201cI believe
        "[2] \u201cOther news.\u201d",
        "[3] \u201cThe festival ends on Sunday.\u201d",
        "",
        f"[1] {title}, paragraph 1, sentence 1 (harbour.md)",
        "[2] Ferry strike, paragraph 2, sentence 1 (ferry.md)",
        "[3] same article as [1], paragraph 3, sentence 2",
    ]


def test_terminal_wraps_long_quotes_without_losing_words():
    text = " ".join(f"word{n}" for n in range(60)) + "."
    out = to_terminal(_answer(_citation(text=text)), width=40)
    quote = out.split("\n\n")[0]
    assert all(len(line) <= 40 for line in quote.splitlines())
    assert re.findall(r"word\d+", quote) == re.findall(r"word\d+", text)


def test_terminal_decline_repeats_the_question():
    out = to_terminal(DECLINED)
    assert NOT_FOUND in out and "Who won the 2018 World Cup?" in out and "[1]" not in out


def test_json_line_follows_the_ask_contract():
    line = to_json(_answer(_citation(text="Caf\u00e9 \u201cquoted\u201d <b>", url="https://e.com")))
    assert "\n" not in line
    data = json.loads(line)
    assert data["question"] == "When does it end?"
    assert data["answered"] is True
    assert data["answer"] == "Caf\u00e9 \u201cquoted\u201d <b>"
    [c] = data["citations"]
    assert {k: c[k] for k in ("doc", "title", "text", "paragraph", "sentence", "score")} == {
        "doc": "harbour.md",
        "title": "Harbour festival",
        "text": "Caf\u00e9 \u201cquoted\u201d <b>",
        "paragraph": 3,
        "sentence": 1,
        "score": 0.9123,
    }
    assert "\u201c" in line  # not ASCII-escaped: readable in a terminal


def test_json_for_a_decline_has_no_citations():
    data = json.loads(to_json(DECLINED))
    assert data["answered"] is False and data["citations"] == []
    assert data["question"] == "Who won the 2018 World Cup?"


# --- split_message ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


def _check_split(text: str, limit: int) -> list[str]:
    pieces = split_message(text, limit)
    assert all(0 < len(p) <= limit for p in pieces), [len(p) for p in pieces]
    # no text is lost or reordered: only white space at the cuts may go
    assert "".join(pieces).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(" ", "")
    return pieces


def test_short_message_is_one_piece_unchanged():
    assert split_message("Hello\nworld") == ["Hello\nworld"]


def test_long_message_splits_at_line_breaks():
    lines = [f"<blockquote>[{n}] " + "x" * 90 + "</blockquote>" for n in range(100)]
    text = "\n".join(lines)
    pieces = _check_split(text, TELEGRAM_LIMIT)
    assert len(pieces) > 1
    for piece in pieces:  # no line, and so no HTML tag pair, is cut in two
        assert all(line in lines for line in piece.split("\n"))


def test_over_long_line_is_cut_at_spaces():
    text = " ".join(["abcdefghij"] * 1000)
    pieces = _check_split(text, 100)
    assert all(p.split() and set(p.split()) == {"abcdefghij"} for p in pieces)


def test_over_long_word_is_cut_hard():
    text = "y" * 250
    assert _check_split(text, 100) == ["y" * 100, "y" * 100, "y" * 50]


@pytest.mark.parametrize("seed", range(30))
def test_random_messages_never_exceed_the_limit_and_lose_nothing(seed):
    rng = random.Random(seed)
    limit = rng.choice([1, 2, 5, 17, 64, 300, TELEGRAM_LIMIT])
    parts = []
    for _ in range(rng.randint(1, 300)):
        kind = rng.random()
        if kind < 0.15:
            parts.append("\n" * rng.randint(1, 3))
        elif kind < 0.25:
            parts.append("z" * rng.randint(1, 2 * limit + 5))  # a word longer than the limit
        else:
            parts.append(rng.choice(["word", "&amp;", "\u00e9t\u00e9", "<b>", "a", "\U0001f50e"]) + " ")
    text = "".join(parts)
    _check_split(text, limit)


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        split_message("text", 0)
