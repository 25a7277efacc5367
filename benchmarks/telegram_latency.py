"""Telegram latency figures against the fake Bot API on 127.0.0.1, as ratios to a baseline of the same run.

    PYTHONPATH=. python benchmarks/telegram_latency.py [--corpus corpus] [--questions 40]

1. idle round trip: a question every 300 ms; update handed out by the fake server -> answer
   received by it; p50 against one bare question encode of the serving encoder (target <= 2x);
2. back-to-back: 120 questions from 120 chats at once; the most answers sent in any second
   (Telegram allows 30);
3. flood: the fake answers 429 (retry_after 5) beyond a burst of 3 per chat, then ~1 a second;
   one user sends 300 questions in 10 s while 5 others ask one every 2 s: the others' latency
   (p50 <= 1 s, max <= 3 s), the flooder's "slow down" notices (<= 5), the 429s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.service import QAService  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.telegram.app import build_application, serving  # noqa: E402
from bot.telegram.format import RATE_LIMITED  # noqa: E402
from tests.telegram.fake_api import ChatLimit, FakeBotApi  # noqa: E402
from tests.telegram.updates import Sender  # noqa: E402

TOKEN = "123456:BENCH-token-AbCdEfGhIjKlMnOpQrStUvWxYz"
QUESTIONS = [
    "How many visitors are expected at the festival?",
    "Who cut the ribbon?",
    "When does the festival end?",
    "What was restored on Gull Point?",
    "Where did the parade of tall ships take place?",
]


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def handed_out_at(api: FakeBotApi, update_id: int) -> float:
    """When the fake server handed the update to the bot (the getUpdates answer that held it)."""
    for call in api.calls_of("getUpdates"):
        if isinstance(call.result, list) and any(u["update_id"] == update_id for u in call.result):
            assert call.done_at is not None
            return call.done_at
    raise LookupError(update_id)


def answered_at(api: FakeBotApi, chat_id: int, after: float) -> float:
    calls = api.wait_for("sendMessage", lambda c: c.params["chat_id"] == chat_id and c.at >= after, 30.0)
    return min(c.at for c in calls)


def bare_encode_p50(service: QAService, rounds: int) -> float:
    encoder = service.answerer.encoder
    encoder.encode([QUESTIONS[0]])  # warm
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        encoder.encode([f"{QUESTIONS[n % len(QUESTIONS)]} {n}"])
        times.append(time.perf_counter() - started)
    return p50(times)


def idle_round_trips(api: FakeBotApi, count: int, first_chat: int) -> list[float]:
    sender, trips = Sender(api), []
    for n in range(count):
        chat = first_chat + n
        message = sender.message(
            {"id": chat, "type": "private", "first_name": "B"},
            f"{QUESTIONS[n % len(QUESTIONS)]}",
            {"id": chat, "is_bot": False, "first_name": "B"},
        )
        update_id = api.push("message", message)
        done = answered_at(api, chat, 0.0)
        trips.append(done - handed_out_at(api, update_id))
        time.sleep(0.3)
    return trips


def busiest_second(api: FakeBotApi, chats: range) -> int:
    sender = Sender(api)
    for chat in chats:
        sender.private(QUESTIONS[chat % len(QUESTIONS)], user_id=chat)
    calls = api.wait_for("sendMessage", lambda c: c.params["chat_id"] in chats, 60.0, len(chats))
    times = sorted(c.at for c in calls)
    return max(sum(1 for t in times[i:] if t - times[i] <= 1.0) for i in range(len(times)))


def flood(api: FakeBotApi) -> dict[str, float]:
    api.chat_limit = ChatLimit(burst=3, per_second=1.0, retry_after=5)
    sender, flooder, others = Sender(api), 90_000, [91_000 + n for n in range(5)]
    asked: list[tuple[int, float]] = []

    def flood_user() -> None:
        for n in range(300):
            sender.private(f"{QUESTIONS[n % len(QUESTIONS)]} ({n})", user_id=flooder)
            time.sleep(10 / 300)

    thread = threading.Thread(target=flood_user)
    start = time.monotonic()
    thread.start()
    for round_ in range(5):
        for other in others:
            sender.private(QUESTIONS[(round_ + other) % len(QUESTIONS)], user_id=other)
            asked.append((other, time.monotonic()))
        time.sleep(max(0.0, start + 2 * (round_ + 1) - time.monotonic()))
    thread.join()
    latencies = []
    for other in others:
        asks = [at for who, at in asked if who == other]
        answers = api.wait_for(
            "sendMessage", lambda c, other=other: c.params["chat_id"] == other and c.error is None, 30.0, len(asks)
        )
        latencies += [answer.at - at for answer, at in zip(sorted(answers, key=lambda c: c.at), asks, strict=False)]
    time.sleep(12)
    sent = api.calls_of("sendMessage")
    return {
        "others p50 s": p50(latencies),
        "others max s": max(latencies),
        "flooder notices": sum(1 for c in sent if c.params["chat_id"] == flooder and c.params["text"] == RATE_LIMITED),
        "flooder answers": sum(
            1 for c in sent if c.params["chat_id"] == flooder and c.error is None and c.params["text"] != RATE_LIMITED
        ),
        "429s": sum(1 for c in sent if c.error is not None and c.error.status == 429),
    }


async def main(args: argparse.Namespace) -> None:
    api = FakeBotApi(TOKEN).start()
    with tempfile.TemporaryDirectory() as work:
        settings = Settings(
            _env_file=None,
            corpus_dir=args.corpus,
            index_dir=args.index_dir or Path(work) / "index",
            telegram_bot_token=SecretStr(TOKEN),
            telegram_base_url=api.base_url,
            telegram_base_file_url=api.base_file_url,
            user_rate_per_minute=10,
        )
        service = QAService(settings)
        service.open()
        encode = bare_encode_p50(service, 50)
        answer_times = []
        for n in range(30):
            started = time.perf_counter()
            service.answerer.answer(f"{QUESTIONS[n % len(QUESTIONS)]}")
            answer_times.append(time.perf_counter() - started)
        app = build_application(settings, service)
        async with serving(settings, app):
            await asyncio.to_thread(idle_round_trips, api, 5, 40_000)  # warm up
            trips = await asyncio.to_thread(idle_round_trips, api, args.questions, 50_000)
            busiest = await asyncio.to_thread(busiest_second, api, range(60_000, 60_120))
            flooded = await asyncio.to_thread(flood, api) if not args.no_flood else {}
        app.bot.inbox.close()
    api.stop()
    print(f"bare question encode p50        {encode * 1000:8.1f} ms  (baseline)")
    print(
        f"whole answer (no Telegram) p50  {p50(answer_times) * 1000:8.1f} ms  = {p50(answer_times) / encode:.2f}x encode"
    )
    print(
        f"idle round trip p50             {p50(trips) * 1000:8.1f} ms  = {p50(trips) / encode:.2f}x encode (target <= 2x)"
    )
    print(f"idle round trip max             {max(trips) * 1000:8.1f} ms")
    print(f"back-to-back: most sends in 1 s {busiest:8d}     (Telegram allows 30)")
    for key, value in flooded.items():
        print(f"flood: {key:24} {value:8.2f}" if isinstance(value, float) else f"flood: {key:24} {value:8d}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument(
        "--index-dir", type=Path, help="reuse an index built for --corpus (default: build one in a temp dir)"
    )
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--no-flood", action="store_true")
    asyncio.run(main(parser.parse_args()))
