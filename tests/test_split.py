"""Sentence splitting and passages: the hard cases of news prose."""

from __future__ import annotations

import pytest

from bot.corpus import Article
from bot.split import split_articles, split_sentences

# --- the hard cases named in the issue ------------------------------------------------------


@pytest.mark.parametrize(
    "paragraph, expected",
    [
        pytest.param(
            "Mr Kim Jong Un met Mr Trump in Hanoi. They talked for two hours.",
            ["Mr Kim Jong Un met Mr Trump in Hanoi.", "They talked for two hours."],
            id="Mr Kim without a full stop",
        ),
        pytest.param(
            "Mr. Kim arrived on Monday. Mrs. Lee and Dr. Tan met him at the airport.",
            ["Mr. Kim arrived on Monday.", "Mrs. Lee and Dr. Tan met him at the airport."],
            id="titles with a full stop",
        ),
        pytest.param(
            "The deal is worth US$500 million (S$681 million). It closes next year.",
            ["The deal is worth US$500 million (S$681 million).", "It closes next year."],
            id="currencies in brackets",
        ),
        pytest.param(
            "The firm paid US$1.5 billion for the stake. Shares rose 2.5 per cent.",
            ["The firm paid US$1.5 billion for the stake.", "Shares rose 2.5 per cent."],
            id="decimal amounts",
        ),
        pytest.param(
            "The law took effect on Apr 25, 2019. Critics objected.",
            ["The law took effect on Apr 25, 2019.", "Critics objected."],
            id="Apr 25, 2019",
        ),
        pytest.param(
            "It was signed on Apr. 25, 2019 in Singapore. Critics objected.",
            ["It was signed on Apr. 25, 2019 in Singapore.", "Critics objected."],
            id="Apr. 25, 2019 with a full stop",
        ),
        pytest.param(
            "Prices rose 3.5 per cent in the U.S. last year. Analysts expect more.",
            ["Prices rose 3.5 per cent in the U.S. last year.", "Analysts expect more."],
            id="U.S. inside a sentence",
        ),
        pytest.param(
            "\u201cWe are ready,\u201d he said. \u201cThe talks begin on Monday.\u201d She nodded.",
            ["\u201cWe are ready,\u201d he said.", "\u201cThe talks begin on Monday.\u201d", "She nodded."],
            id="curly quotes open and close sentences",
        ),
        pytest.param(
            "The minister said: \u201cWe are ready.\u201d The talks begin on Monday.",
            ["The minister said: \u201cWe are ready.\u201d", "The talks begin on Monday."],
            id="closing curly quote stays with its sentence",
        ),
        pytest.param(
            "He shouted: \u201cStop!\u201d Everyone froze.",
            ["He shouted: \u201cStop!\u201d", "Everyone froze."],
            id="exclamation inside curly quotes",
        ),
        pytest.param(
            "He asked \u201cwhy now?\u201d and left. Nobody answered.",
            ["He asked \u201cwhy now?\u201d and left.", "Nobody answered."],
            id="question mark inside a quote mid-sentence",
        ),
        pytest.param(
            "\u201cIt is over.\u201d \u201cNo, it is not.\u201d The crowd cheered.",
            ["\u201cIt is over.\u201d", "\u201cNo, it is not.\u201d", "The crowd cheered."],
            id="one quoted sentence closes and the next opens",
        ),
        pytest.param(
            "\u201cAre you sure?\u201d Mr Tan asked. He nodded.",
            ["\u201cAre you sure?\u201d Mr Tan asked.", "He nodded."],
            id="quoted question then its attribution",
        ),
        pytest.param(
            "\u201cWhy now?\u201d asked Mr Kim, 45, a teacher. \u201cWhy not?\u201d Prime Minister Lee told reporters.",
            [
                "\u201cWhy now?\u201d asked Mr Kim, 45, a teacher.",
                "\u201cWhy not?\u201d Prime Minister Lee told reporters.",
            ],
            id="attributions after quoted questions",
        ),
        pytest.param(
            "\u2018It is over.\u2019 The crowd cheered.",
            ["\u2018It is over.\u2019", "The crowd cheered."],
            id="curly single quotes close a sentence",
        ),
    ],
)
def test_hard_cases_split_where_a_reader_would(paragraph, expected):
    assert split_sentences(paragraph) == expected


def test_no_sentence_starts_with_a_closing_quote():
    paragraph = (
        "Mr Lee said on Apr 25, 2019: \u201cWe will pay US$500 million (S$681 million).\u201d "
        "\u2018That is a lot,\u2019 said Ms Tan. \u2018Too much.\u2019 The vote is on Friday."
    )
    sentences = split_sentences(paragraph)
    assert sentences[-1] == "The vote is on Friday."
    for sentence in sentences:
        assert not sentence.startswith(("\u201d", "\u2019")), sentences
    # nothing of the paragraph is lost or duplicated
    assert " ".join(sentences) == paragraph


def test_punctuation_only_pieces_are_not_sentences():
    assert split_sentences("The vote passed. ... \u2014") == ["The vote passed."]
    assert split_sentences("   ") == []


# --- positions and passages -----------------------------------------------------------------


def _article(doc: str, *paragraphs: str) -> Article:
    return Article(doc=doc, title=doc, paragraphs=tuple(paragraphs))


def test_positions_are_one_based_per_article_and_paragraph():
    a = _article("a.md", "One. Two.", "Three.")
    b = _article("b.txt", "Four. Five. Six.")
    sentences, _ = split_articles([a, b])
    assert [(s.doc, s.paragraph, s.sentence, s.text) for s in sentences] == [
        ("a.md", 1, 1, "One."),
        ("a.md", 1, 2, "Two."),
        ("a.md", 2, 1, "Three."),
        ("b.txt", 1, 1, "Four."),
        ("b.txt", 1, 2, "Five."),
        ("b.txt", 1, 3, "Six."),
    ]


def test_passages_hold_consecutive_sentences_of_one_paragraph():
    paragraph = " ".join(f"Sentence number {n} is here." for n in range(1, 10))
    sentences, passages = split_articles([_article("a.md", paragraph, "Last one.")], passage_sentences=4)
    assert len(sentences) == 10
    # 9 sentences -> passages of 4, 4, 1; the next paragraph starts its own passage
    assert [(p.paragraph, p.last - p.first + 1) for p in passages] == [(1, 4), (1, 4), (1, 1), (2, 1)]
    for passage_id, passage in enumerate(passages):
        members = sentences[passage.first : passage.last + 1]
        assert all(s.passage == passage_id and s.paragraph == passage.paragraph for s in members)
    # every sentence belongs to exactly one passage
    assert sorted(i for p in passages for i in range(p.first, p.last + 1)) == list(range(10))


def test_passage_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        split_articles([_article("a.md", "One.")], passage_sentences=0)


def test_reference_marks_are_not_sentences_of_their_own():
    # Wikipedia-style notes: `.[k]` must not become a citable "[k]" nor start the next sentence
    paragraph = "The capsule was pressurized with pure oxygen.[k] The crew died.[h] It was 1967."
    assert split_sentences(paragraph) == [
        "The capsule was pressurized with pure oxygen.[k]",
        "The crew died.[h]",
        "It was 1967.",
    ]
    assert split_sentences("The tank burst.[c]") == ["The tank burst.[c]"]
