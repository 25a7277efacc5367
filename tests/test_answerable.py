"""Does a sentence hold what a question asks for: the kind of fact, not given by the question."""

from __future__ import annotations

import pytest

from bot.answerable import asked_kind, direct, facts, holds, parse


@pytest.mark.parametrize(
    "question, kind",
    [
        ("How old is the bakery's owner?", "age"),
        ("How much prize money did the chess player win?", "money"),
        ("How long does the ferry crossing take?", "duration"),
        ("How many runners finished the marathon?", "number"),
        ("What time does the train leave?", "clock"),
        ("When did the first ferry sail?", "date"),
        ("Who is the prosecutor in the case?", "person"),
        ("Which city hosts the festival next?", "place"),
        ("Which Lisbon hospital treated the sailor?", "place"),
        ("Which newspaper reported the plan?", "entity"),
        ("What was the name of the ferry's captain?", "name"),
        ("How much more likely are floods now?", "ratio"),
        ("How many times bigger is the new stadium?", "ratio"),
        ("Why did the talks fail?", "reason"),
        ("Was the minister already there when the train arrived?", "yes_no"),
        ("What did the regime complain about?", "other"),
        # the question's own (first) question phrase decides, not one in a clause after it
        ("Who was mayor when the bridge opened?", "person"),
        ("What was the singer wearing when she arrived?", "other"),
        ("Why did the ferry stop when the storm began?", "reason"),
        ("When did the age of steam end?", "date"),
        ("In what year did she reach the age of eighteen?", "date"),
    ],
)
def test_the_kind_of_fact_a_question_asks_for(question, kind):
    assert asked_kind(question) == kind


@pytest.mark.parametrize(
    "question, sentence, expected",
    [
        ("How old is the baker, Ana Silva?", "The baker, Ana Silva, opened a second shop.", False),
        ("How old is the baker, Ana Silva?", "The baker, Ana Silva, 42, opened a second shop.", True),
        ("How many runners finished the 2019 marathon?", "The 2019 marathon was the wettest on record.", False),
        ("How many runners finished the 2019 marathon?", "In 2019, 3,400 runners finished the marathon.", True),
        ("How much did the bakery owe in rent?", "The bakery owed rent for years.", False),
        ("How much did the bakery owe in rent?", "The bakery owed 12,000 euros in rent.", True),
        ("When did the ferry line open?", "The ferry line opened on April 12, 1981.", True),
        ("When did the ferry line open?", "The ferry line opened with two boats.", False),
        ("Who founded the choir?", "The choir was founded by Maria Lopes.", True),
        ("Who founded the choir?", "The choir was founded to sing at weddings.", False),
        ("How much more likely are floods now?", "Floods are now twice as likely.", True),
        ("How much more likely are floods now?", "Floods are 30% more likely.", True),
        ("How much more likely are floods now?", "Floods are now more likely.", False),
        ("How much more likely are floods now?", "The New York Times reported on the floods.", False),
    ],
)
def test_a_sentence_holds_the_fact_only_when_the_question_does_not_give_it(question, sentence, expected):
    assert holds(parse(question), facts(sentence)) is expected


def test_rare_words_weigh_more_than_common_ones():
    ask = parse("What did the captain of the ferry say?")
    weight = dict(zip(ask.terms, ask.rarity, strict=True))
    assert weight["captain"] > weight["say"]


@pytest.mark.parametrize(
    "asked, read",
    [
        ("Can you tell me who won the match in Leeds?", "Who won the match in Leeds?"),
        ("hi, could you please tell me where the mayor lives", "where the mayor lives"),
        ("Do you know when the Tyne bridge opened?", "When the Tyne bridge opened?"),
        ("Please tell me how old the mayor is?", "How old the mayor is?"),
        ("I'd like to know why the vote in York failed.", "Why the vote in York failed."),
        ("According to the article, did the Mayor resign?", "Did the Mayor resign?"),
        ("Thanks! In this article, who is the Mayor?", "Who is the Mayor?"),
        ("So is the bridge open?", "Is the bridge open?"),
        ("The bridge in Leeds opened in May. Who built it?", "The bridge in Leeds opened in May. Who built it?"),
        ("I read the report from Leeds. Who won?", "Who won?"),
        ("Where did Mr. Smith go?", "Where did Mr. Smith go?"),  # an abbreviation ends no sentence
        ("Who won? And when?", "Who won? And when?"),
        ("Who won the match?", "Who won the match?"),
        ("Can the mayor resign?", "Can the mayor resign?"),  # a yes/no question, not a frame
        ("In the end, who won?", "In the end, who won?"),
        ("Tell me about the match?", "Tell me about the match?"),  # no question word: as asked
        ("What do you know about the match?", "What do you know about the match?"),
        ("hi bot, where does the mayor live?", "where does the mayor live?"),
        ("Hey @newsbot who won the match?", "Who won the match?"),
        ("Quick question: who won the match?", "Who won the match?"),
        ("Sorry, and when did the bridge open?", "When did the bridge open?"),
        ("And the match?", "And the match?"),  # no question word after the greeting: as asked
        ("where does the mayor live pls?", "where does the mayor live?"),
        ("Who won the match, thanks :)?", "Who won the match?"),
        ("Who won the match? Thanks, bot! \U0001f642", "Who won the match?"),
        ("Who won the match??", "Who won the match?"),
        ("Who sang Thank You?", "Who sang Thank You?"),  # a title, not thanks
        ("Did he win? By how much?", "Did he win? By how much?"),
    ],
)
def test_a_question_asked_indirectly_is_read_as_the_direct_question(asked, read):
    assert direct(asked) == read
