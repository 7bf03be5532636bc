"""The project's one version (VERSION in the repository), as installed."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("codex-image-server")
except metadata.PackageNotFoundError:  # run from a bare source tree
    __version__ = "0+unknown"
