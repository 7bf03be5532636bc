"""This package's version (the project's one VERSION file), as installed."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("codex-image-client")
except metadata.PackageNotFoundError:  # run from a bare source tree
    __version__ = "0+unknown"
