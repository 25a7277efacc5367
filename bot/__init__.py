"""Answer questions about news articles with cited sentences."""

__version__ = "0.1.0"
