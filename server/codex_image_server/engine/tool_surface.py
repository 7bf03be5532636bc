"""The tools codex offers the model: the image tool and as little else as we
can switch off, so a prompt cannot talk the model into running a shell,
reading files, browsing or spawning agents.

Measured against the stand-in upstream (what codex put in `tools` of its
first /responses request): with these switches 0.169.0, 0.170.0 and 0.171.0
offer only `image_gen` and `request_user_input` (harmless in `exec`), where
they offered `exec_command`, `write_stdin`, `view_image`, `multi_agent_v1`,
the goal tools and `web_search` before; the tools' JSON sent with every
model turn falls from about 21 KB to 4.5 KB.

Each switch is given as `-c features.<name>=false`, not `--disable <name>`:
the two mean the same, but `--disable` with a name this codex does not know
fails every run ("Unknown feature flag", exit 1) while an unknown config key
is ignored. So the union of every version's names is passed to any version,
and a feature that a version renames is simply added to its row.
"""

from __future__ import annotations

# The features each codex version was checked to know and to drop from
# `tools` (`codex features list`, and the stand-in's record of `tools`).
_COMMON = (
    "shell_tool",
    "unified_exec",  # exec_command, write_stdin, shell
    "multi_agent",
    "multi_agent_v2",  # spawning agents
    "goals",  # get/create/update_goal
    "apps",
    "plugins",
    "tool_suggest",  # connectors and their tools
    "browser_use",
    "browser_use_external",
    "in_app_browser",
    "computer_use",
    "view_image",  # reading an image file by path
)
FEATURES_OFF_BY_VERSION: dict[str, tuple[str, ...]] = {
    "0.169.0": _COMMON,
    "0.170.0": _COMMON,
    "0.171.0": _COMMON,
}

# Config keys (not features) that add a tool: the hosted web search.
CONFIG_OFF = ("web_search=disabled",)


def features_off() -> tuple[str, ...]:
    """Every feature name any known version drops, each once, in a fixed order."""
    return tuple(
        dict.fromkeys(name for names in FEATURES_OFF_BY_VERSION.values() for name in names)
    )


def codex_arguments() -> list[str]:
    """The `-c` overrides that leave the model the image tool alone. They go
    after any operator override, so a config cannot turn the shell back on."""
    argv: list[str] = []
    for name in features_off():
        argv += ["-c", f"features.{name}=false"]
    for setting in CONFIG_OFF:
        argv += ["-c", setting]
    return argv
