"""The Telegram front end: python-telegram-bot handlers over the answering core."""
