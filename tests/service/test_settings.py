"""Settings read from flags and variables, in-process: each setting is
declared once (a field of `Settings`) and its flag, variable and list rules
derive from that field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from codex_image_server import settings


def load(argv=(), **environ) -> settings.Settings:
    return settings.load([*argv, "--state-dir", "/nonexistent/state"], environ)


def test_every_field_is_an_option_with_a_flag_a_variable_and_a_group():
    fields = [f.name for f in dataclasses.fields(settings.Settings)]
    assert [o.name for o in settings.OPTIONS] == fields
    for option in settings.OPTIONS:
        assert option.flag.startswith("--") and option.env.startswith(settings.PREFIX), option
        assert option.help and option.group, option
    assert len({o.flag for o in settings.OPTIONS}) == len(fields)
    assert len({o.env for o in settings.OPTIONS}) == len(fields)


def test_a_field_declared_without_its_help_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Bare:
        plain: int = 1

    with pytest.raises(TypeError, match=r"^Bare.plain is declared without setting\(\)"):
        settings.options_of(Bare)

    @dataclasses.dataclass(frozen=True)
    class Declared:
        plain: int = settings.setting(1, help="a number", group="numbers", flag="--number")

    (option,) = settings.options_of(Declared)
    assert (option.kind, option.flag, option.env) == (int, "--number", "CODEX_IMAGE_SERVER_PLAIN")


def test_names_that_differ_from_the_fields():
    assert settings.env_name("http_port") == "CODEX_IMAGE_SERVER_PORT"
    assert settings.env_name("api_keys") == "CODEX_IMAGE_SERVER_API_KEY"
    assert settings.flag_name("accounts") == "--account"
    assert settings.flag_name("grpc_port") == "--grpc-port"
    assert settings.env_name("grpc_port") == "CODEX_IMAGE_SERVER_GRPC_PORT"


def test_types_come_from_the_fields():
    kinds = {o.name: o.kind for o in settings.OPTIONS}
    assert kinds["grpc_port"] is int and kinds["banner"] is bool and kinds["keys_file"] is Path
    assert kinds["accounts"] is list and kinds["codex_bin"] is str


def test_flags_win_over_variables_and_variables_over_defaults():
    assert load().grpc_port == 17342
    assert load(CODEX_IMAGE_SERVER_GRPC_PORT="7").grpc_port == 7
    assert load(["--grpc-port", "8"], CODEX_IMAGE_SERVER_GRPC_PORT="7").grpc_port == 8
    assert load(CODEX_IMAGE_SERVER_GRPC_PORT="").grpc_port == 17342  # empty: unset


def test_lists_split_as_their_help_says():
    got = load(
        CODEX_IMAGE_SERVER_API_KEY="a, b,c",
        CODEX_IMAGE_SERVER_CODEX_CONFIG="x=1\n y=2 \n",
        CODEX_IMAGE_SERVER_ALLOWED_HOSTS="one.test, two.test",
    )
    assert got.api_keys == ("a", "b", "c")
    assert got.codex_config == ("x=1", "y=2")
    assert got.allowed_hosts == ("one.test", "two.test")
    flags = load(
        [
            "--api-key",
            "a,b",
            "--api-key",
            "c",
            "--allowed-host",
            "x.test,y.test",
            "--allowed-host",
            "z.test",
            "--codex-config",
            "k=a,b",
        ]
    )
    assert flags.api_keys == ("a,b", "c")  # a flag gives one key whole
    assert flags.allowed_hosts == ("x.test", "y.test", "z.test")
    assert flags.codex_config == ("k=a,b",)


def test_booleans_and_paths_from_variables():
    got = load(
        CODEX_IMAGE_SERVER_FINISH_EARLY="off",
        CODEX_IMAGE_SERVER_BANNER="yes",
        CODEX_IMAGE_SERVER_KEYS_FILE="~/k.json",
    )
    assert got.finish_early is False and got.banner is True
    assert got.keys_file == Path("~/k.json").expanduser()
    with pytest.raises(SystemExit, match=r"^CODEX_IMAGE_SERVER_BANNER: not a boolean: 'maybe'$"):
        load(CODEX_IMAGE_SERVER_BANNER="maybe")
    with pytest.raises(SystemExit, match=r"^CODEX_IMAGE_SERVER_MAX_CONCURRENT: invalid literal"):
        load(CODEX_IMAGE_SERVER_MAX_CONCURRENT="many")


def test_shown_defaults():
    assert settings.shown_default("grpc_port") == "17342"
    assert settings.shown_default("finish_early") == "on"
    assert settings.shown_default("allow_unauthenticated_remote") == "off"
    assert settings.shown_default("codex_profile") == "none"
    assert settings.shown_default("banner") == "on when stderr is a terminal"


def test_help_groups_follow_the_fields():
    titles = [g.title for g in settings.build_parser()._action_groups][2:]
    assert titles == list(dict.fromkeys(o.group for o in settings.OPTIONS))
    assert titles[0] == "where it listens" and titles[-1] == "output"
