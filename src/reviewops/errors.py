"""The error every area raises for an expected failure: one line for the user, no traceback."""


class ReviewOpsError(Exception):
    """An expected failure with a one-line message for the user (no traceback is shown)."""
