"""Three replicas behind one webhook, sharing one DATABASE_URL (the suite's own PostgreSQL).

The test plays Telegram and the load balancer: it posts 500 updates round-robin to the three
replicas' webhook ports (several at a time, as Telegram does), and posts an update again to the
next replica when one does not answer 200. Mid-burst one replica is SIGKILLed; an admin's
/reindex arrives during the burst, after the article changed (40,000 visitors become 65,000).
Each replica talks to the fake Bot API under its own URL prefix, so every reply says who sent it.

Checked: every question answered; an answer sent twice only when the killed replica's reply
was accepted before it died (counted and printed); the /stats count is the replicas' sum; and
after the /reindex reply every replica answers from the new version without a restart (that part
needs the shared store of the pgstore branch: see `test_answers_after_the_reindex_come_from_the_new_version`).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.service import QAService
from bot.settings import Settings
from tests.conftest import SMALL_ARTICLE
from tests.fakes import FakeEncoder

from .conftest import TOKEN
from .fake_api import Call, FakeBotApi
from .updates import ADMIN_ID

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = ("r1", "r2", "r3")
KILLED = "r2"
UPDATES = 500
AFTER_SWITCH = 50  # questions sent once every replica answered from the new version
SECRET = "replica-test-secret"
QUESTION = "How many visitors are expected at the festival?"
OLD_FACT, NEW_FACT = "40,000", "65,000"
FIRST_USER = 500_000
LEASE = 5  # INBOX_LEASE_SECONDS: a dead replica's updates are taken over after this


@dataclass
class Replica:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Outcome:
    """What the scenario saw, for the tests below to judge."""

    api: FakeBotApi
    questions: list[int]  # the chat (user) ids that asked one question each
    killed_at: float  # time.monotonic() of the SIGKILL (the fake server's clock too)
    migrate_output: str
    reindex_reply: str
    stats_reply: str
    switched: dict[str, bool]  # replica -> answered a probe from the new version within the wait
    after_switch: list[str] = field(default_factory=list)  # the answers to the last questions
    exit_codes: dict[str, int] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)

    def replies(self, chat_id: int) -> list[Call]:
        return replies_to(self.api, chat_id)


def replies_to(api: FakeBotApi, chat_id: int) -> list[Call]:
    """The replies Telegram accepted in a chat, oldest first."""
    return sorted(
        (c for c in api.calls_of("sendMessage") if c.error is None and c.params["chat_id"] == chat_id),
        key=lambda c: c.at,
    )


def message_update(update_id: int, user_id: int, text: str) -> dict:
    chat = {"id": user_id, "type": "private", "first_name": "Ann"}
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "chat": chat,
        "from": {"id": user_id, "is_bot": False, "first_name": "Ann"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


class Telegram:
    """Delivers updates to the webhook replicas round-robin; an update a replica did not take
    (connection refused or dropped, no 200) goes to the next replica, as Telegram would retry."""

    def __init__(self, replicas: list[Replica]) -> None:
        self.replicas = replicas
        self.dead: set[str] = set()
        self._next = 0
        self._ids = iter(range(1, 10**9))
        self._lock = threading.Lock()
        self.redelivered = 0

    def update_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _pick(self) -> Replica:
        with self._lock:
            live = [r for r in self.replicas if r.name not in self.dead]
            replica = live[self._next % len(live)]
            self._next += 1
            return replica

    def deliver(self, update: dict, to: Replica | None = None) -> None:
        body = json.dumps(update).encode()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replica = to or self._pick()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=30)
                connection.request(
                    "POST",
                    "/telegram",
                    body,
                    {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": SECRET},
                )
                status = connection.getresponse().status
                connection.close()
            except OSError:
                status = 0
                if replica.process.poll() is not None:
                    with self._lock:
                        self.dead.add(replica.name)
            if status == 200:
                return
            with self._lock:
                self.redelivered += 1
            to = None
            time.sleep(0.05)
        raise AssertionError(f"update {update['update_id']} could not be delivered to any replica")

    def ask(self, user_id: int, text: str = QUESTION, to: Replica | None = None) -> None:
        self.deliver(message_update(self.update_id(), user_id, text), to)


def new_database(postgres_url: str) -> str:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_url.replace("/postgres?", f"/{name}?", 1)


def start_replica(name: str, env: dict[str, str], api: FakeBotApi, folder: Path) -> Replica:
    log = folder / f"{name}.log"
    replica_env = {**env, "TELEGRAM_BASE_URL": api.base_url_for(name), "TELEGRAM_BASE_FILE_URL": api.base_file_url}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.telegram.bot_process"],
            cwd=ROOT,
            env=replica_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(name, process, log)


def wait_listening(replica: Replica) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        found = re.search(r"webhook listening on 127\.0\.0\.1:(\d+)/", replica.log_text())
        if found:
            replica.port = int(found.group(1))
            return
        assert replica.process.poll() is None, f"{replica.name} exited:\n{replica.log_text()[-3000:]}"
        time.sleep(0.1)
    raise AssertionError(f"{replica.name} never listened:\n{replica.log_text()[-3000:]}")


def answered(api: FakeBotApi, users: list[int], timeout: float) -> None:
    """Wait until every user got at least one reply."""
    wanted = set(users)
    deadline = time.monotonic() + timeout
    while True:
        got = {c.params["chat_id"] for c in api.calls_of("sendMessage") if c.error is None}
        missing = wanted - got
        if not missing:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(missing)} questions not answered within {timeout}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def outcome(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    """Run the scenario once; the tests below check what it saw."""
    folder = tmp_path_factory.mktemp("replicas")
    (folder / "corpus").mkdir()
    article = folder / "corpus" / "harbour.md"
    article.write_text(SMALL_ARTICLE, encoding="utf-8")
    url = new_database(postgres_url)
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_", "ADMIN_IDS"))}
    env = {
        **keep,
        "PYTHONPATH": os.environ.get("CITEBOT_CHILD_PYTHONPATH", str(ROOT)),
        "CORPUS_DIR": str(folder / "corpus"),
        "INDEX_DIR": str(folder / "index"),
        "DATABASE_URL": url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": "https://bot.example.com/telegram",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": "0",
        "WEBHOOK_SECRET": SECRET,
        "ADMIN_IDS": str(ADMIN_ID),
        "INBOX_LEASE_SECONDS": str(LEASE),
        "LOG_LEVEL": "INFO",
    }
    migrated = subprocess.run(
        [sys.executable, "-m", "bot", "db", "migrate"], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    settings = Settings(
        _env_file=None,
        corpus_dir=folder / "corpus",
        index_dir=folder / "index",
        embedding_model=FakeEncoder.name,
        database_url=url,
    )
    first = QAService(settings, encoder_factory=FakeEncoder)
    first.open()  # the first version, before the replicas start
    first.close()
    api = FakeBotApi(TOKEN).start()
    replicas = [start_replica(name, env, api, folder) for name in REPLICAS]
    try:
        for replica in replicas:
            wait_listening(replica)
        telegram = Telegram(replicas)
        killed = next(r for r in replicas if r.name == KILLED)
        burst = list(range(FIRST_USER, FIRST_USER + UPDATES - AFTER_SWITCH - 1))
        first, second = burst[: len(burst) * 3 // 5], burst[len(burst) * 3 // 5 :]
        with ThreadPoolExecutor(8) as pool:
            sent = [pool.submit(telegram.ask, user) for user in first]
            # mid-burst: the replica is busy answering when it dies
            api.wait_for("sendMessage", lambda c: c.via == KILLED, timeout=60, count=40)
            killed.process.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            killed.process.wait(timeout=10)
            for future in sent:
                future.result()
            article.write_text(SMALL_ARTICLE.replace(OLD_FACT, NEW_FACT), encoding="utf-8")
            sent = [pool.submit(telegram.ask, ADMIN_ID, "/reindex")]
            sent += [pool.submit(telegram.ask, user) for user in second]
            for future in sent:
                future.result()
        [reindexed] = api.wait_for("sendMessage", lambda c: c.params["chat_id"] == ADMIN_ID, timeout=90)
        answered(api, burst, timeout=90)
        # every live replica, asked directly, answers from the new version (a bounded wait)
        live = [r for r in replicas if r is not killed]
        switched: dict[str, bool] = {}
        probe = FIRST_USER + UPDATES
        for replica in live:
            deadline = time.monotonic() + 20
            switched[replica.name] = False
            while not switched[replica.name] and time.monotonic() < deadline:
                probe += 1
                telegram.ask(probe, to=replica)
                answered(api, [probe], timeout=30)
                switched[replica.name] = NEW_FACT in replies_to(api, probe)[0].params["text"]
                if not switched[replica.name]:
                    time.sleep(0.5)
        last = list(range(probe + 1, probe + 1 + AFTER_SWITCH))
        with ThreadPoolExecutor(8) as pool:
            for future in [pool.submit(telegram.ask, user) for user in last]:
                future.result()
        answered(api, last, timeout=60)
        telegram.ask(ADMIN_ID, "/stats")
        stats = api.wait_for("sendMessage", lambda c: c.params["chat_id"] == ADMIN_ID, timeout=30, count=2)[-1]
        result = Outcome(
            api=api,
            questions=burst,
            killed_at=killed_at,
            migrate_output=migrated.stdout,
            reindex_reply=reindexed.params["text"],
            stats_reply=stats.params["text"],
            switched=switched,
        )
        result.after_switch = [
            c.params["text"] for c in api.calls_of("sendMessage") if c.error is None and c.params["chat_id"] in last
        ]
        print(f"redelivered by 'Telegram' after a failed post: {telegram.redelivered}")
        for replica in live:
            replica.process.send_signal(signal.SIGTERM)
        for replica in live:
            result.exit_codes[replica.name] = replica.process.wait(timeout=30)
        result.logs = {r.name: r.log_text() for r in replicas}
        yield result
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                replica.process.kill()
                replica.process.wait()
        api.stop()
        import psycopg

        with psycopg.connect(postgres_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{url.split("/")[-1].split("?")[0]}" WITH (FORCE)')


def test_every_question_is_answered_and_only_the_dead_replicas_replies_are_repeated(outcome: Outcome) -> None:
    assert "Applied" in outcome.migrate_output  # `python -m bot db migrate` made the tables
    lost = [user for user in outcome.questions if not outcome.replies(user)]
    assert not lost, f"{len(lost)} of {len(outcome.questions)} questions never answered"
    # answered from the article (either version), not with an apology for an error
    texts = {user: [c.params["text"] for c in outcome.replies(user)] for user in outcome.questions}
    wrong = {user: t[0][:200] for user, t in texts.items() if not any(OLD_FACT in x or NEW_FACT in x for x in t)}
    assert not wrong, f"{len(wrong)} questions got no answer from the article, e.g. {list(wrong.values())[:3]}"
    repeated = {user: outcome.replies(user) for user in outcome.questions if len(outcome.replies(user)) > 1}
    duplicates = sum(len(calls) - 1 for calls in repeated.values())
    by = {name: sum(1 for c in outcome.api.calls_of("sendMessage") if c.via == name) for name in REPLICAS}
    taken = sum(int(n) for log in outcome.logs.values() for n in re.findall(r"taking over (\d+) updates", log))
    print(
        f"replies per replica {by}; updates taken over from the dead replica: {taken}; "
        f"{len(repeated)} questions answered twice ({duplicates} duplicates); switched: {outcome.switched}"
    )
    for user, calls in repeated.items():
        first, *again = calls
        # the killed replica had its reply accepted, then died before marking the update done
        assert first.via == KILLED and first.at <= outcome.killed_at, (user, [(c.via, c.at) for c in calls])
        assert all(c.via != KILLED for c in again)
    assert by[KILLED] > 0 and all(by[name] > 0 for name in REPLICAS)
    assert outcome.reindex_reply.startswith("Reindexed")


def test_stats_count_the_answers_of_every_replica(outcome: Outcome) -> None:
    answered = int(re.search(r"Questions answered: (\d+)", outcome.stats_reply).group(1))  # type: ignore[union-attr]
    assert answered >= len(outcome.questions) + 50  # the burst, the probes and the last questions


def test_the_live_replicas_stop_cleanly(outcome: Outcome) -> None:
    assert set(outcome.exit_codes.values()) == {0}, outcome.exit_codes
    for name, log in outcome.logs.items():
        assert "Traceback" not in log, (name, log[-3000:])
        assert TOKEN.split(":")[1] not in log


def test_answers_after_the_reindex_come_from_the_new_version(outcome: Outcome) -> None:
    assert outcome.switched and all(outcome.switched.values()), outcome.switched
    assert len(outcome.after_switch) >= AFTER_SWITCH
    assert all(NEW_FACT in text and OLD_FACT not in text for text in outcome.after_switch)
