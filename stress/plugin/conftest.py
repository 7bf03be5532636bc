"""The plugin tests' shared server and stub (tests/plugin/conftest.py)."""

from tests.plugin.conftest import plugin_server, plugin_stub  # noqa: F401 - pytest fixtures, shared with tests/plugin
