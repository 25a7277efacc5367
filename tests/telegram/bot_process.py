"""`run_bot` in a process of its own, with the fake encoder: for tests that kill the process.

Settings come from the environment (CORPUS_DIR, INDEX_DIR, TELEGRAM_*), as for `python -m bot run`;
only the encoder differs, so the process starts in a second instead of loading the model.
Run as `python -m tests.telegram.bot_process`.
"""

from __future__ import annotations

from bot.service import QAService
from bot.settings import Settings
from bot.telegram.app import run_bot
from bot.telegram.logs import configure_logging
from tests.fakes import FakeEncoder


def main() -> None:
    """Open the index with the fake encoder and serve Telegram until a signal."""
    settings = Settings(_env_file=None, embedding_model=FakeEncoder.name)
    configure_logging(settings)
    service = QAService(settings, encoder_factory=FakeEncoder)
    service.open()
    run_bot(settings, service)


if __name__ == "__main__":
    main()
