"""Errors that the command line reports as one line, without a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem the user can fix: bad config, bad query, missing database."""
