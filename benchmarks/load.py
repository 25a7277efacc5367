"""Load run: a burst of questions from many chats, all at once, against the fake Bot API server.

    .venv/bin/python benchmarks/load.py                      # `python -m bot run`, real model
    .venv/bin/python benchmarks/load.py --mode inprocess     # the Application in this process, FakeEncoder

`process` mode (default) starts the real bot as `python -m bot run` with the packaged
all-MiniLM-L6-v2 model over the bundled corpus (the index is built at start-up, in a child
process), pointed at the fake Bot API server (tests/telegram/fake_api.py) on 127.0.0.1, and
measures the bot process's memory with psutil. `inprocess` mode builds the Application in this
process with the FakeEncoder (memory then includes the fake server).

Each burst pushes QUESTIONS questions from CHATS chats (half private chats, half groups;
group questions are `/ask ...`) at once, waits until every one has a reply or the deadline
passes, and prints: questions sent, replies received, duplicates, lost, replies in the wrong
chat or not threaded, wall time, the outgoing rate seen by the server, and resident memory
before, at the peak of and after each burst. In process mode it then stops the bot with SIGTERM
while --restart questions are in flight, asks more while it is down, starts it again, and counts
replies, duplicates and lost questions across the restart. Everything is bounded (--deadline);
nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.telegram.fake_api import DROP, Call, FakeBotApi, Fault  # noqa: E402
from tests.telegram.updates import Sender, private_chat, user  # noqa: E402

TOKEN = "123456:LOAD-test-token-AbCdEfGhIjKlMnOpQrStUvWxYz"
QUESTIONS = [
    "Who discovered the geoglyphs?",
    "When did Priestley publish his findings?",
    "How many tree species grow in the Amazon?",
    "Who coined the name oxygen?",
    "At what temperature does oxygen condense?",
    "Which country contains the majority of the Amazon rainforest?",
    "What is the atomic number of oxygen?",
    "How is oxygen transported in bulk?",
    "Which large predators live in the Amazon rainforest?",
    "What is the capital of Australia?",  # declined: the articles don't say
]
FAKE_QUESTIONS = [
    "How many visitors are expected at the festival?",
    "When does the festival end?",
    "Who cut the ribbon at the old customs house?",
    "What opened on Friday?",
]


@dataclass
class MemoryWatch:
    """Samples a process's resident memory every `every` seconds in a thread; keeps the peak."""

    process: psutil.Process
    every: float = 0.05
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def rss(self) -> int:
        return self.process.memory_info().rss

    def start(self) -> MemoryWatch:
        self.peak = self.rss()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                return

    def stop(self) -> int:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.peak


def mb(n: int) -> str:
    return f"{n / 2**20:.0f} MB"


def push_burst(
    api: FakeBotApi, questions: list[str], count: int, chats: int, first_user: int
) -> dict[tuple[int, int], int]:
    """Push `count` questions from `chats` chats at once; returns {(chat_id, message_id): update_id}."""
    sender = Sender(api)
    asked: dict[tuple[int, int], int] = {}
    for n in range(count):
        slot = n % chats
        text = questions[n % len(questions)]
        if slot % 2 == 0:  # a private chat: one user asking
            user_id = first_user + slot
            message = sender.message(private_chat(user_id), text, user(user_id))
        else:  # a group: a different member each time
            group = {"id": -(10**12) - first_user - slot, "type": "supergroup", "title": f"Load group {slot}"}
            message = sender.message(group, f"/ask {text}", user(first_user + chats + n))
        asked[(message["chat"]["id"], message["message_id"])] = api.push("message", message)
    return asked


def replies_since(api: FakeBotApi, start: int) -> list[Call]:
    return [c for c in api.calls_of("sendMessage")[start:] if c.error is None]


def window_max(times: list[float], width: float) -> int:
    """The most events in any window of `width` seconds."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def tally(asked: dict[tuple[int, int], int], replies: list[Call]) -> tuple[int, int, int]:
    """(questions answered, duplicate replies, replies in the wrong chat or not threaded to a question).

    Group replies are threaded to their question; private replies are not quoted, so a private
    chat's replies are matched to its questions by count.
    """
    private = {chat for chat, _ in asked if chat > 0}
    wrong_place = 0
    per_question: Counter[tuple[int, int]] = Counter()
    by_chat_private: dict[int, int] = Counter()
    for call in replies:
        chat_id = int(call.params["chat_id"])
        reply_to = (call.params.get("reply_parameters") or {}).get("message_id")
        if chat_id in private:
            by_chat_private[chat_id] += 1
        elif (chat_id, reply_to) in asked:
            per_question[(chat_id, reply_to)] += 1
        else:
            wrong_place += 1
    for chat_id, got in by_chat_private.items():
        mine = [k for k in asked if k[0] == chat_id]
        for k in mine[:got]:
            per_question[k] += 1
        if got > len(mine):
            per_question[mine[-1]] += got - len(mine)
    wrong_place += sum(n for chat_id, n in by_chat_private.items() if not any(k[0] == chat_id for k in asked))
    answered = sum(1 for k in asked if per_question[k] >= 1)
    return answered, sum(n - 1 for n in per_question.values() if n > 1), wrong_place


def inject_faults(api: FakeBotApi) -> None:
    """Mid-burst: flood control, server errors and dropped connections on sendMessage and getUpdates."""
    api.fail_next("sendMessage", Fault(429, "Too Many Requests: retry after 2", {"retry_after": 2}))
    api.fail_next("sendMessage", Fault(502, "Bad Gateway"), times=5)
    api.fail_next("sendMessage", DROP, times=5)
    api.fail_next("getUpdates", Fault(500, "Internal Server Error"), times=2)
    api.fail_next("getUpdates", DROP)


def run_burst(
    api: FakeBotApi,
    watch: MemoryWatch,
    count: int,
    chats: int,
    deadline: float,
    questions: list[str],
    first_user: int,
    settle: Callable[[], None],
    faults: bool = False,
) -> dict[str, Any]:
    """One burst: push, wait for the replies (bounded), count them, measure memory."""
    settle()
    before = watch.rss()
    start_index = len(api.calls_of("sendMessage"))
    actions_before = len(api.calls_of("sendChatAction"))
    watch.start()
    started = time.monotonic()
    failed_before = sum(1 for c in api.calls if c.error is not None)
    asked = push_burst(api, questions, count, chats, first_user)
    limit = started + deadline
    injected = not faults
    while time.monotonic() < limit and len(replies_since(api, start_index)) < count:
        if not injected and len(replies_since(api, start_index)) >= count // 10:
            inject_faults(api)
            injected = True
        time.sleep(0.1)
    last_reply = max((c.at for c in replies_since(api, start_index)), default=time.monotonic())
    time.sleep(1.0)  # a duplicate would show up now
    peak = watch.stop()
    replies = replies_since(api, start_index)
    answered, duplicates, wrong_place = tally(asked, replies)
    settle()
    after = watch.rss()
    sends = [c.at for c in replies] + [c.at for c in api.calls_of("sendChatAction")[actions_before:] if c.error is None]
    group_sends: dict[int, list[float]] = {}
    for c in replies:
        if int(c.params["chat_id"]) < 0:
            group_sends.setdefault(int(c.params["chat_id"]), []).append(c.at)
    return {
        "questions_sent": count,
        "chats": chats,
        "replies_received": len(replies),
        "answered": answered,
        "duplicates": duplicates,
        "lost": count - answered,
        "wrong_chat_or_unthreaded": wrong_place,
        "failed_calls_injected": sum(1 for c in api.calls if c.error is not None) - failed_before,
        "wall_time_s": round(last_reply - started, 1),
        "replies_per_s": round(len(replies) / max(last_reply - started, 1e-9), 1),
        "requests_per_s_overall": round(len(sends) / max(last_reply - started, 1e-9), 1),
        "max_requests_in_any_1s": window_max(sends, 1.0),  # AIORateLimiter: a bucket of 30, refilled at 30/s
        "max_replies_to_one_group_in_any_60s": max((window_max(t, 60.0) for t in group_sends.values()), default=0),
        "chat_actions_sent": len(sends) - len(replies),
        "rss_before": mb(before),
        "rss_peak": mb(peak),
        "rss_after": mb(after),
    }


def start_process_bot(api: FakeBotApi, work: Path, threads: int, log_name: str = "bot.log") -> subprocess.Popen[bytes]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "ADMIN_IDS"))}
    env = {
        **keep,
        "PYTHONPATH": str(ROOT),
        "CORPUS_DIR": str(ROOT / "corpus"),
        "INDEX_DIR": str(work / "index"),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_BASE_URL": api.base_url,
        "TELEGRAM_BASE_FILE_URL": api.base_file_url,
        "LOG_LEVEL": "WARNING",
        "ENCODER_THREADS": str(threads),
        "USER_RATE_PER_MINUTE": "10",
        "CHAT_RATE_PER_MINUTE": "30",
    }
    log = (work / log_name).open("wb")
    return subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=work, env=env, stdout=log, stderr=log)


def run_restart(
    api: FakeBotApi, work: Path, bot: subprocess.Popen[bytes], count: int, chats: int, threads: int, deadline: float
) -> tuple[dict[str, Any], subprocess.Popen[bytes]]:
    """SIGTERM the bot with questions in flight, ask more while it is down, start it again; count replies."""
    start_index = len(api.calls_of("sendMessage"))
    asked = push_burst(api, QUESTIONS, count, chats, 900_000)
    limit = time.monotonic() + deadline
    while len(replies_since(api, start_index)) < 10 and time.monotonic() < limit:
        time.sleep(0.05)
    before_stop = len(replies_since(api, start_index))
    stopping = time.monotonic()
    bot.send_signal(signal.SIGTERM)
    code = bot.wait(timeout=deadline)
    drain = time.monotonic() - stopping
    by_first_run = len(replies_since(api, start_index))
    polls = len(api.calls_of("getUpdates"))
    asked_while_down = push_burst(api, QUESTIONS, count // 4, max(2, chats // 4), 950_000)
    restarted = time.monotonic()
    bot = start_process_bot(api, work, threads, "bot-restarted.log")
    api.wait_for("getUpdates", lambda c: True, timeout=600, count=polls + 1)
    everything = {**asked, **asked_while_down}
    while len(replies_since(api, start_index)) < len(everything) and time.monotonic() < restarted + deadline:
        time.sleep(0.1)
    time.sleep(2.0)  # a duplicate would show up now
    answered, duplicates, wrong_place = tally(everything, replies_since(api, start_index))
    return {
        "questions_before_stop": count,
        "questions_while_down": len(asked_while_down),
        "replies_before_sigterm": before_stop,
        "replies_by_first_run": by_first_run,
        "sigterm_to_exit_s": round(drain, 1),
        "first_run_exit_code": code,
        "replies_received": len(replies_since(api, start_index)),
        "answered": answered,
        "duplicates": duplicates,
        "lost": len(everything) - answered,
        "wrong_chat_or_unthreaded": wrong_place,
    }, bot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["process", "inprocess"], default="process")
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--bursts", type=int, default=2, help="bursts in a row (memory should plateau)")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to wait for one burst's replies")
    parser.add_argument("--threads", type=int, default=1, help="ENCODER_THREADS (process mode)")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="inject a 429, 5xx and dropped connections (sendMessage, getUpdates) in each burst",
    )
    parser.add_argument(
        "--restart",
        type=int,
        default=200,
        metavar="N",
        help="process mode: then SIGTERM the bot with N questions in flight and restart it (0: skip)",
    )
    args = parser.parse_args()

    api = FakeBotApi(TOKEN).start()
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="citebot-load-") as tmp:
        work = Path(tmp)
        if args.mode == "process":
            bot = start_process_bot(api, work, args.threads)
            try:
                started = time.monotonic()
                api.wait_for("getUpdates", timeout=600)
                print(
                    f"bot process ready in {time.monotonic() - started:.1f} s (index built, model loaded)", flush=True
                )
                watch = MemoryWatch(psutil.Process(bot.pid))
                for n in range(args.bursts):
                    results.append(
                        run_burst(
                            api,
                            watch,
                            args.questions,
                            args.chats,
                            args.deadline,
                            QUESTIONS,
                            10_000 * (n + 1),
                            lambda: time.sleep(2.0),
                            args.faults,
                        )
                    )
                    print(json.dumps(results[-1]), flush=True)
                if args.restart:
                    restart, bot = run_restart(
                        api, work, bot, args.restart, max(2, args.chats // 5), args.threads, args.deadline
                    )
                    print("restart: " + json.dumps(restart), flush=True)
            finally:
                bot.send_signal(signal.SIGTERM)
                try:
                    code = bot.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    bot.kill()
                    code = bot.wait()
                print(f"bot stopped on SIGTERM, exit code {code}")
                text = "".join(p.read_text(errors="replace") for p in work.glob("bot*.log"))
                secret = TOKEN.split(":")[1]
                print(
                    f"bot logs: {len(text.splitlines())} lines, token present: {secret in text}, "
                    f"tracebacks: {text.count('Traceback')}"
                )
                for line in text.splitlines()[-10:]:
                    print(f"  | {line[:200]}")
        else:
            results = asyncio.run(run_in_process(api, work, args))
    api.stop()
    print_table(results, args)


async def run_in_process(api: FakeBotApi, work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from pydantic import SecretStr

    from bot.service import QAService
    from bot.settings import Settings
    from bot.telegram.app import build_application, serving
    from tests.conftest import SMALL_ARTICLE
    from tests.fakes import FakeEncoder

    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "harbour.md").write_text(SMALL_ARTICLE, encoding="utf-8")
    settings = Settings(
        _env_file=None,
        corpus_dir=corpus,
        index_dir=work / "index",
        embedding_model=FakeEncoder.name,
        telegram_bot_token=SecretStr(TOKEN),
        telegram_base_url=api.base_url,
        telegram_base_file_url=api.base_file_url,
    )
    service = QAService(settings, encoder_factory=FakeEncoder)
    service.open()
    app = build_application(settings, service)
    watch = MemoryWatch(psutil.Process())
    results = []

    def settle() -> None:
        gc.collect()
        time.sleep(2.0)

    async with serving(settings, app):
        for n in range(args.bursts):
            results.append(
                await asyncio.to_thread(
                    run_burst,
                    api,
                    watch,
                    args.questions,
                    args.chats,
                    args.deadline,
                    FAKE_QUESTIONS,
                    10_000 * (n + 1),
                    settle,
                    args.faults,
                )
            )
            print(json.dumps(results[-1]), flush=True)
    app.bot.inbox.close()
    return results


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    encoder = (
        "real all-MiniLM-L6-v2 (ONNX), `python -m bot run`" if args.mode == "process" else "FakeEncoder, in-process"
    )
    if not results:
        return
    print(f"\nLoad run: {args.questions} questions from {args.chats} chats at once, {args.bursts} burst(s); {encoder}")
    keys = list(results[0]) if results else []
    print(f"{'':34}" + "".join(f"{f'burst {i + 1}':>14}" for i in range(len(results))))
    for key in keys:
        print(f"{key:34}" + "".join(f"{str(r[key]):>14}" for r in results))


if __name__ == "__main__":
    main()
