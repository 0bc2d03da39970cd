"""LoopMind: a local-first loop and sample library that organizes itself."""

__version__ = "0.1.0"
