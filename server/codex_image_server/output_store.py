"""Kept for imports from before the store package: see store/."""
from .store import OutputStore, StoredImage, is_valid_id, new_id  # noqa: F401
