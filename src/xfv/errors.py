"""xfv's own errors: one base, :class:`XfvError`, and a subclass per kind.

Every one is a ``ValueError`` (scikit-learn style: the input was not what was expected) and carries the HTTP
status the web app answers with; the CLI reports any of them on one line with exit code 2.
"""

from __future__ import annotations


class XfvError(ValueError):
    """A value given to xfv is not what was expected; the message names it and what was expected."""

    http_status = 422


class NotFoundError(XfvError):
    """A dataset, pair, image, model, upload or task that does not exist."""

    http_status = 404


class NoFaceError(XfvError):
    """No face was found in an image."""


class FitError(XfvError):
    """A C-Score logistic fit did not converge."""


class TooLargeError(XfvError):
    """An input exceeds a size limit (bytes or pixels)."""

    http_status = 413


class BusyError(XfvError):
    """The server's work queue is full; the client should retry after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DatabaseUnavailableError(BusyError):
    """The database cannot be reached, answers too slowly, or is not a database (a corrupt file)."""
