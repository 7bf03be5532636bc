"""The process around the service: bounded pools, slots, working directories, logs.

- blocking: blocking work off the event loop, bounded
- slots: at most N codex processes at once, and a fair queue
- workdirs: per-request working directories, and what a dead server left
- idle: dropping a reader that stopped reading
- heap: glibc heap settings for ~1 MiB image pieces
- private_files: everything written is the user's alone (umask)
- logs: one JSON object per line, one idiom: log(event, **fields)
"""
