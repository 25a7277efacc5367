"""The bot's Bot API client: an ExtBot that skips updates it cannot read instead of stalling.

python-telegram-bot parses a getUpdates answer as a whole. One update it cannot read (a field
missing, or a Bot API newer than the library expects) fails the batch; the Updater then never
confirms it and fetches the same batch again and again: the bot stops answering everyone.
`TolerantBot` puts an empty `Update(update_id)` in the place of such an update, so the batch
parses, the offset moves past it, and the handlers see an update with nothing to answer.
A message without its chat counts as unreadable too: the library accepts it, its filters do not.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import ExtBot

log = logging.getLogger(__name__)

UNREADABLE = (KeyError, TypeError, ValueError, AttributeError)  # what a failed de_json raises


class TolerantBot(ExtBot[int]):
    """ExtBot whose getUpdates answers never hold an update it cannot parse."""

    async def _post(self, endpoint: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        result = await super()._post(endpoint, data, **kwargs)
        if endpoint == "getUpdates" and isinstance(result, list):
            return [self._readable(raw) for raw in result]
        return result

    def _readable(self, raw: Any) -> Any:
        try:
            update = Update.de_json(dict(raw), self)
            message = update.effective_message if update is not None else None
            if message is not None and message.chat is None:  # the library does not insist on it; filters do
                raise KeyError("chat")
        except UNREADABLE as exc:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if not isinstance(update_id, int):
                raise
            kinds = sorted(k for k in raw if k != "update_id")
            log.warning("skipped update %d (%s) that cannot be read: %s", update_id, ", ".join(kinds), exc)
            return {"update_id": update_id}
        return raw
