"""The engine: the one place codex is spawned, watched and killed.

- engine: Engine, what the dataplane asks for a run (engine.run) and readiness
- candidate: one codex run from spawn to its image; events/failures: what it said
- process_group, reaper, os_procs, group_records, cleanup: every process of a run found and ended
- binary, versions, tool_surface, codex_env, readiness: which codex, how it is started, with what
- accounts: the pool of Codex logins
- image_locator, image_watch, image_shapes: where its image appears
- prompt, safe_text: what codex is told, and what of its text a caller may see
"""
