"""A local stand-in for the OpenAI upstream, for driving the real codex offline."""

from .codex_home import MOCK_API_KEY, write_codex_home
from .server import UpstreamStandin
from .switches import Switches, parse_directive

__all__ = ["UpstreamStandin", "Switches", "parse_directive", "write_codex_home", "MOCK_API_KEY"]
