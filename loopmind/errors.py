"""LoopMind's exceptions: one base class and a few specific ones.

Every error a user can cause (a bad file, a missing folder) is a ``LoopMindError`` whose
message is one readable line; the CLI prints it without a traceback.
"""


class LoopMindError(Exception):
    """Base class for errors that are reported to the user as one line."""


class DecodeError(LoopMindError):
    """An audio file could not be read or decoded."""


class UnsupportedFormatError(DecodeError):
    """The file is not in a format LoopMind can decode."""


class AnalysisError(LoopMindError):
    """Analysis of decoded audio failed (silence, NaN samples, ...)."""


class LibraryError(LoopMindError):
    """The library database or its folders are unusable."""
