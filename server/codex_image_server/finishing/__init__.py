"""What happens to codex's image before it is stored.

- finish: format, compression and the requested size made exact
- transparency: transparent backgrounds made real and verified (the report)
- matte: the local matte that keys a flat background out
"""
