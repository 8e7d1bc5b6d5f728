"""User-facing errors.

Every problem a user can cause (a bad file, a bad config value, a model that cannot be found)
is raised as a ``StudioError`` subclass whose message is complete and readable on its own. The
CLI and the UI print ``str(error)`` and never a traceback for these.
"""

from __future__ import annotations


class StudioError(Exception):
    """A problem the user can fix; ``kind`` classifies it for run records and the UI."""

    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(StudioError):
    kind = "config"


class DataError(StudioError):
    kind = "data"


class ModelNotAvailableError(StudioError):
    kind = "model_unavailable"
