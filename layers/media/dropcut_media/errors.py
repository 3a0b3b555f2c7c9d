"""The media layer's named exceptions: each carries a plain-English message for a report.

The state machine's Catch matches them by class name (the lead maps them to the job's failure
fields in dropcut/errors.py); nothing here imports dropcut.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base of every error this package raises on purpose; ``str(error)`` is the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MediaUnreadable(MediaError):
    """The input is not a readable video: not a media file, no video stream, or no frame decodes."""


class MediaPlanInvalid(MediaError):
    """The cuts or parameters asked for cannot be made from this input (out of order, empty, a
    part outside the allowed length, a target size that is odd or too small)."""


class PartsIncompatible(MediaError):
    """The edited parts cannot be stitched: a part has no video, or nothing is left to write."""
