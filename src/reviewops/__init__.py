"""ReviewOps: review summarization and sentiment, with the whole MLOps lifecycle around them."""

from reviewops.errors import ReviewOpsError

__version__ = "0.1.0"
__all__ = ["ReviewOpsError", "__version__"]
