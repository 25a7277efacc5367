"""Loading articles: titles, paragraphs, page furniture that must never be cited, bad files."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from bot.corpus import CorpusError, is_furniture, load_corpus, parse_article, split_dateline, unchanged
from bot.split import split_articles

NEWS = """Kim and Trump meet in Hanoi
PHOTO: REUTERS

Mr Kim Jong Un arrived in Hanoi on Apr 25, 2019 by armoured train.
US President Donald Trump flew in a day later.

Protesters gather outside the summit venue on Wednesday. PHOTO: REUTERS

Share it

The summit cost the host US$500 million (S$681 million), officials said.

Get ST's newsletters delivered to your inbox

Read more: Trump says he is in no rush

Sign up for our newsletter

A version of this article appeared in the print edition of The Straits Times on April 26, 2019, with the headline Summit ends early.
"""


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# --- titles and paragraphs ------------------------------------------------------------------


def test_front_matter_gives_title_url_and_date(small_corpus):
    corpus = load_corpus(small_corpus)
    assert corpus.problems == []
    [article] = corpus.articles
    assert article.doc == "harbour.md"
    assert article.title == "Harbour festival opens"
    assert article.url == "https://example.com/harbour"
    assert article.published == "2024-05-01"
    assert article.paragraphs == (
        "The harbour festival opened on Friday with a parade of tall ships.",
        "Mayor Anna Berg cut the ribbon at the old customs house. About 40,000 visitors are expected over three days.",
        "The festival ends on Sunday with fireworks over the bay.",
    )


def test_first_line_is_the_title_when_there_is_no_front_matter():
    article = parse_article("summit.txt", NEWS)
    assert article.title == "Kim and Trump meet in Hanoi"
    assert article.url is None and article.published is None
    # lines of one paragraph are joined; blank lines separate paragraphs
    assert article.paragraphs[0] == (
        "Mr Kim Jong Un arrived in Hanoi on Apr 25, 2019 by armoured train. "
        "US President Donald Trump flew in a day later."
    )


def test_markdown_heading_title_bom_and_windows_line_endings():
    text = "\ufeff# Rates rise again\r\n\r\nThe central bank raised rates.\r\nMarkets fell.\r\n"
    article = parse_article("rates.md", text)
    assert article.title == "Rates rise again"
    assert article.paragraphs == ("The central bank raised rates. Markets fell.",)


def test_blank_lines_before_the_title_are_skipped():
    article = parse_article("padded.md", "   \n\t\n\n# Rates rise again\n\nThe central bank raised rates.\n")
    assert article.title == "Rates rise again"
    assert article.paragraphs == ("The central bank raised rates.",)


def test_a_photo_credit_above_the_headline_is_not_the_title():
    article = parse_article("credit.txt", "PHOTO: REUTERS\nRates rise again\n\nThe central bank raised rates.\n")
    assert article.title == "Rates rise again"
    assert article.paragraphs == ("The central bank raised rates.",)


def test_headings_and_list_markers_are_not_part_of_the_prose():
    text = "Title\n\n## Background\n\n- The first point is made here.\n- The second point follows.\n"
    article = parse_article("list.md", text)
    assert article.paragraphs == ("The first point is made here. The second point follows.",)


# --- page furniture never becomes a citable sentence ----------------------------------------


def test_page_furniture_is_dropped_and_prose_kept():
    article = parse_article("summit.txt", NEWS)
    text = " ".join(article.paragraphs)
    for furniture in (
        "PHOTO",
        "REUTERS",
        "Share it",
        "Protesters gather",
        "newsletter",
        "Read more",
        "Sign up",
        "print edition",
    ):
        assert furniture not in text
    assert article.paragraphs[1] == ("The summit cost the host US$500 million (S$681 million), officials said.")


def test_no_sentence_of_the_small_corpus_is_furniture(small_corpus):
    sentences, _ = split_articles(load_corpus(small_corpus).articles)
    texts = [s.text for s in sentences]
    assert texts == [
        "The harbour festival opened on Friday with a parade of tall ships.",
        "Mayor Anna Berg cut the ribbon at the old customs house.",
        "About 40,000 visitors are expected over three days.",
        "The festival ends on Sunday with fireworks over the bay.",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "PHOTO: REUTERS",
        "PHOTOS: AFP, EPA-EFE",
        "ST PHOTO: JASON QUAH",
        "Crowds outside Parliament House on Sunday. PHOTO: REUTERS",
        "VIDEO: YOUTUBE",
        "Share it",
        "Share this article",
        "Sign up for our newsletter",
        "Get ST's newsletters delivered to your inbox",
        "Download the ST app",
        "Follow us on Telegram",
        "Read more: Singapore GDP grows 1.2 per cent",
        "Published Apr 25, 2019, 5:00 am SGT",
        "Updated: Apr 25, 2019.",
        "Topics: Singapore, Economy",
        "Topics: Singapore, Malaysia, Economy, Trade",
        "Source: The Straits Times",
        "Apr 25, 2019, 5:00 am SGT",
        "25 April 2019",
        "More On This Topic",
        "Listen to this article",
        "Join ST's Telegram channel and get the latest breaking news delivered to you.",
        "Related Story",
        "5 hours ago",
        "Advertisement",
        "\u00a9 2019 SPH. All rights reserved.",
        "![A crowd in Hanoi](hanoi.jpg)",
        "A version of this article appeared in the print edition of The Straits Times on "
        "April 26, 2019, with the headline Summit ends early.",
        "Exclusive: Inside the world's busiest shipping lanes",
        "Opinion: Why the talks will fail",
        "Reporting by Anna Berg; Editing by Tom Lee",
        "Watch: the launch in two minutes",
        # wire credits and bylines, with their punctuation
        "(Reporting by Anna Berg in Riga; Editing by Tom Lee)",
        "Additional reporting by Ali Khan in Dubai.",
        "By Anna Berg, Baltic Wire.",
        "Anna Berg contributed reporting to this story.",
        "Copyright 2021 Baltic Wire. Click for restrictions.",
        # calls to action that end like sentences
        "Follow us on Twitter @balticwire for the latest updates.",
        "Have a news tip? Email us at tips@example.com.",
        "Tell us what you think in the comments below.",
        "Want more stories like this? Sign up here.",
        "Contact the author at anna.berg@example.com.",
        "Our Standards: The Baltic Wire Trust Principles.",
        "Read the full story here.",
        "Scroll down to continue reading.",
        "Story continues below.",
        "Already a subscriber? Log in.",
        "Follow the latest on the summit in our live blog.",
        # captions, told by the photo credit they end with
        "FILE - In this file photo, the mayor opens the bridge. (AP Photo/Anna Berg, File)",
        "The mayor opens the bridge. (Photo: Baltic Wire)",
        "The mayor opens the bridge. Photo: Baltic Wire",
        "(AP Photo/Anna Berg)",
        "Follow Anna Berg on Twitter.",
        "Follow @annaberg for updates from Riga.",
    ],
)
def test_furniture_lines(line):
    assert is_furniture(line)


@pytest.mark.parametrize(
    "line",
    [
        "Mr Kim nodded.",
        "Yes.",
        "The photo: a crowd outside the venue.",
        "The summit cost US$500 million (S$681 million).",
        "\u201cWe are ready,\u201d he said.",
        "Published in 1775, the paper described experiments with dephlogisticated air.",
        "Updated figures released by the ministry on Monday show exports fell 3 per cent.",
        "Related research by the university found that the forest recovers in 20 years.",
        "Sources said the deal was close to being signed.",
        "Apr 25, 2019 was a Thursday.",
        "More on this later, he said.",
        "Join us in welcoming the new minister, the mayor said.",
        "US President Barack Obama tweeted using his account:",
        "Reading the report, she said: \u201cWe need more ships.\u201d",
        "By Monday, prices had fallen 5 per cent.",
        "Reporting by the BBC showed that the minister knew.",
        "Research by Anna Berg found that the forest recovers in 20 years.",
        "Follow the money, the prosecutor told the jury.",
        "Tell us what happened, the officer said.",
        "\u201cTell us the truth,\u201d the protesters shouted.",
        "Email records show the minister knew.",
        "The hacker sent emails from ivan@example.ru to the ministry.",
        "Copyright lawyers say the ruling changes little.",
        "See you here next year, the mayor told the crowd.",
        "Read between the lines and the plan is clear.",
        "Follow-up talks are planned for May.",
        "The story continues to unfold in Riga.",
        "He posted a video: the mayor waving from the bridge.",
        "Photo editors at the paper chose a picture of the crowd.",
        "Sign in, the guard told him.",
    ],
)
def test_prose_lines_are_kept(line):
    assert not is_furniture(line)


def test_prose_paragraph_starting_like_a_promo_can_be_cited(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    _write(folder, "paper.md", "Priestley\n\nPublished in 1775, the paper made Priestley famous.\n")
    corpus = load_corpus(folder)
    assert corpus.problems == []
    assert corpus.articles[0].paragraphs == ("Published in 1775, the paper made Priestley famous.",)


# --- datelines and teasers: recognised by their shape --------------------------------------

WIRE = """Floods close the port of Riga
A tug passes the flooded quay on Monday. PICTURE: AP

RIGA, Mar 3, 2021, Baltic Wire. Floods closed the port of Riga on Monday, the harbour master said.

Ships were sent to Ventspils instead.

Must read: Ten ports that rebuilt after floods

Follow the story
"""


def test_a_dateline_becomes_metadata_and_its_sentence_is_cited_without_it():
    article = parse_article("riga.txt", WIRE)
    assert (article.place, article.agency, article.published) == ("Riga", "Baltic Wire", "2021-03-03")
    assert article.paragraphs == (
        "Floods closed the port of Riga on Monday, the harbour master said.",
        "Ships were sent to Ventspils instead.",
    )
    sentences, _ = split_articles([article])
    assert sentences[0].text.startswith("Floods closed")


@pytest.mark.parametrize(
    "opening, place, agency",
    [
        ("PARIS (Agence Presse) - The talks resumed on Monday.", "Paris", "Agence Presse"),
        ("CAPE CANAVERAL, Florida - The launch slipped again.", "Cape Canaveral, Florida", None),
        ("OSLO \u2014 The prize was awarded today.", "Oslo", None),
        # wire datelines give the day without its year
        ("LONDON, April 25 (Wire Service) - Oil prices rose on Monday.", "London", "Wire Service"),
        ("WASHINGTON, Jan. 3 (Wire Service) - The Senate voted.", "Washington", "Wire Service"),
        ("SEOUL, South Korea, 3 March (AP) \u2014 Two missiles were fired.", "Seoul, South Korea", "AP"),
    ],
)
def test_dateline_shapes(opening, place, agency):
    dateline, rest = split_dateline(opening)
    assert dateline is not None and (dateline.place, dateline.agency) == (place, agency)
    assert rest[:1].isupper() and not rest.startswith(opening.split()[0])


@pytest.mark.parametrize(
    "opening",
    [
        "NASA, the US space agency, said it would launch. The rest followed.",
        "UN officials said the talks had failed.",
        "IBM. The company said so.",
    ],
)
def test_prose_that_opens_with_capitals_keeps_its_words(opening):
    assert split_dateline(opening) == (None, opening)


# --- bad files: a message naming the file, the other articles still load ---------------------


def _problem_for(corpus, doc):
    [problem] = [p for p in corpus.problems if p.doc == doc]
    return problem


def test_empty_file_is_reported_by_name_and_others_load(small_corpus):
    _write(small_corpus, "empty.md", "")
    _write(small_corpus, "blank.txt", "  \n\n \n")
    corpus = load_corpus(small_corpus)
    assert [a.doc for a in corpus.articles] == ["harbour.md"]
    for doc in ("empty.md", "blank.txt"):
        message = _problem_for(corpus, doc).message
        assert doc in message and "empty" in message


def test_non_utf8_file_is_reported_by_name_and_others_load(small_corpus):
    _write(small_corpus, "latin1.txt", "Caf\u00e9 opens\n\nThe caf\u00e9 opened today.\n".encode("latin-1"))
    corpus = load_corpus(small_corpus)
    assert [a.doc for a in corpus.articles] == ["harbour.md"]
    message = _problem_for(corpus, "latin1.txt").message
    assert "latin1.txt" in message and "UTF-8" in message


def test_unreadable_file_is_reported_by_name_and_others_load(small_corpus, monkeypatch):
    locked = _write(small_corpus, "locked.md", "Locked\n\nSome text here.\n")
    real_read_bytes = Path.read_bytes

    def read_bytes(self):  # chmod 000 does not stop root, so refuse the read here
        if self == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    corpus = load_corpus(small_corpus)
    assert [a.doc for a in corpus.articles] == ["harbour.md"]
    message = _problem_for(corpus, "locked.md").message
    assert "locked.md" in message and "cannot be read" in message


def test_dangling_link_is_reported_not_silently_ignored(small_corpus):
    (small_corpus / "moved.md").symlink_to(small_corpus / "no-such-file.md")
    corpus = load_corpus(small_corpus)
    assert [a.doc for a in corpus.articles] == ["harbour.md"]
    assert "moved.md" in _problem_for(corpus, "moved.md").message


def test_title_without_prose_is_reported(small_corpus):
    _write(small_corpus, "only-title.md", "Just a headline\n\nPHOTO: AFP\n\nShare it\n")
    corpus = load_corpus(small_corpus)
    message = _problem_for(corpus, "only-title.md").message
    assert "only-title.md" in message and "no article text" in message


def test_other_files_are_ignored(small_corpus):
    _write(small_corpus, "notes.pdf", b"%PDF-1.4")
    _write(small_corpus, ".hidden.md", "Hidden\n\nNot an article.\n")
    (small_corpus / "sub.md").mkdir()
    corpus = load_corpus(small_corpus)
    assert [a.doc for a in corpus.articles] == ["harbour.md"]
    assert corpus.problems == []


def test_missing_folder_says_what_to_do(tmp_path):
    with pytest.raises(CorpusError) as error:
        load_corpus(tmp_path / "nowhere")
    message = str(error.value)
    assert "nowhere" in message and "CORPUS_DIR" in message


def test_fingerprint_changes_when_an_article_changes(small_corpus):
    before = load_corpus(small_corpus).fingerprint()
    path = small_corpus / "harbour.md"
    path.write_text(path.read_text(encoding="utf-8") + "\nThe parade was cancelled.\n", encoding="utf-8")
    after = load_corpus(small_corpus).fingerprint()
    assert set(before) == set(after) == {"harbour.md"}
    assert before["harbour.md"] != after["harbour.md"]


def test_an_unchanged_folder_is_recognised_without_parsing(small_corpus):
    """What the bot checks at start: the index's fingerprint against the files as they are now."""
    fingerprint = load_corpus(small_corpus).fingerprint()
    assert unchanged(small_corpus, fingerprint)
    path = small_corpus / "harbour.md"
    text = path.read_text(encoding="utf-8")
    path.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))  # BOM, Windows line ends
    assert unchanged(small_corpus, fingerprint) and load_corpus(small_corpus).fingerprint() == fingerprint
    path.write_text(text.replace("40,000", "45,000"), encoding="utf-8")
    assert not unchanged(small_corpus, fingerprint)
    path.write_text(text, encoding="utf-8")
    (small_corpus / "broken.txt").write_bytes(b"\xff\xfe not UTF-8")  # skipped when parsed: still a change to look at
    assert not unchanged(small_corpus, fingerprint)
    (small_corpus / "broken.txt").unlink()
    (small_corpus / "harbour.md").unlink()
    assert not unchanged(small_corpus, fingerprint)
    assert not unchanged(small_corpus.parent / "gone", fingerprint)
