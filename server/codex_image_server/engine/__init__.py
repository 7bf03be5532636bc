"""The engine: the one place codex is spawned, watched and killed."""
from .engine import Engine

__all__ = ["Engine"]
