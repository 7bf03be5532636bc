"""`codex-image-server service install|uninstall|status`: keep the server
running at login as a systemd user unit (Linux) or a launchd agent (macOS)."""
