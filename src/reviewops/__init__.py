"""ReviewOps: review summarization and sentiment, with the whole MLOps lifecycle around them."""

__version__ = "0.1.0"


class ReviewOpsError(Exception):
    """An expected failure with a one-line message for the user (no traceback is shown)."""
