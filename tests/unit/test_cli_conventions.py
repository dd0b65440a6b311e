"""Every ``sealpost`` command follows the same conventions (docs/cli.md), checked over all of them.

The command tree is walked as Typer builds it, so a new command is covered without being
listed here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import sealpost as sealpost_package
from sealpost.cli import app
from sealpost.clients import _cli
from sealpost.clients._text import enum_word
from sealpost.v1 import admin_pb2, common_pb2

ROOT: Any = typer.main.get_command(app)


def _walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


ALL = list(_walk(ROOT, ()))
GROUPS = [(path, command) for path, command in ALL if hasattr(command, "commands")]
LEAVES = [(path, command) for path, command in ALL if not hasattr(command, "commands")]
#: (group path, leaf path under it, the group's option) for every group with options.
LIFTABLE = [
    (group_path, leaf_path, option)
    for group_path, group in GROUPS
    for option in group.params
    if option.opts and option.opts[0].startswith("--") and option.opts[0] != "--help"
    for leaf_path, leaf in LEAVES
    if leaf_path[: len(group_path)] == group_path
    and group_path
    # A subcommand with an option of the same name keeps it (tested below).
    and option.opts[0] not in {name for p in leaf.params for name in getattr(p, "opts", ())}
]


def _id(path: tuple[str, ...]) -> str:
    return " ".join(path) or "sealpost"


@pytest.mark.parametrize(("path", "command"), ALL, ids=[_id(p) for p, _ in ALL])
def test_every_command_and_option_has_help(path: tuple[str, ...], command: Any) -> None:
    assert (command.help or "").strip(), f"{_id(path)} has no help text"
    for param in command.params:
        if getattr(param, "hidden", False) or not getattr(param, "opts", None):
            continue
        if param.opts[0].startswith("-"):
            assert (param.help or "").strip(), f"{_id(path)} {param.opts[0]} has no help text"


@pytest.mark.parametrize(("path", "command"), GROUPS, ids=[_id(p) for p, _ in GROUPS])
def test_every_group_follows_the_conventions(path: tuple[str, ...], command: Any) -> None:
    assert isinstance(command, _cli.CommandGroup), f"{_id(path)} is not made by cli_app"


@pytest.mark.parametrize(
    ("group_path", "leaf_path", "option"),
    LIFTABLE,
    ids=[f"{_id(leaf)} {option.opts[0]}" for _group, leaf, option in LIFTABLE],
)
def test_a_group_option_works_after_the_subcommand(
    group_path: tuple[str, ...], leaf_path: tuple[str, ...], option: Any
) -> None:
    group: Any = ROOT
    for name in group_path:
        group = group.commands[name]
    rest = list(leaf_path[len(group_path) :])
    value = [] if option.is_flag else ["given-after"]
    ctx = group.make_context(_id(group_path), [*rest, option.opts[0], *value])
    expected = True if option.is_flag else "given-after"
    assert str(ctx.params[option.name]) == str(expected)
    # ... and every such option has an environment variable as well (--json excepted).
    if option.opts[0] != "--json":
        assert option.envvar, f"{option.opts[0]} of {_id(group_path)} has no SEALPOST_* variable"


def test_a_group_option_is_not_taken_from_a_subcommand_that_has_its_own() -> None:
    # `sealpost review verify-evidence` has its own --directory-key: it stays the command's.
    group: Any = ROOT.commands["review"]
    ctx = group.make_context("review", ["verify-evidence", "FILE", "--directory-key", "ab"])
    assert ctx.params["directory_key"] == ""
    assert "--directory-key" in [*ctx._protected_args, *ctx.args]


def _options(command: Any) -> list[Any]:
    return [p for p in command.params if getattr(p, "opts", None)]


@pytest.mark.parametrize(("path", "command"), ALL, ids=[_id(p) for p, _ in ALL])
def test_one_name_per_concept(path: tuple[str, ...], command: Any) -> None:
    for param in _options(command):
        names = set(param.opts) | set(param.secondary_opts)
        if "--directory-key" in names or param.name in {"directory_key", "directory_pin"}:
            assert param.opts == ["--directory-key"], _id(path)
            assert param.envvar == "SEALPOST_DIRECTORY_KEY", _id(path)
        assert "--directory-pin" not in names, _id(path)
        if "--json" in names:
            assert param.is_flag, _id(path)
        if "--gateway" in names and path[:1] != ("terminal",):
            assert param.envvar == "SEALPOST_GATEWAY", _id(path)
        if "--ca-file" in names:
            assert param.envvar == "SEALPOST_CA_FILE", _id(path)


def test_deprecated_names_still_work_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    old_flag = runner.invoke(
        app, ["review", "verify-evidence", "/nonexistent", "--directory-pin", "abcd"]
    )
    assert old_flag.exit_code == 2
    assert "warning: --directory-pin is deprecated; use --directory-key" in old_flag.output
    assert "64 hexadecimal digits" in old_flag.output
    monkeypatch.setenv("SEALPOST_DIRECTORY_PIN", "abcd")
    monkeypatch.delenv("SEALPOST_DIRECTORY_KEY", raising=False)
    old_env = runner.invoke(app, ["review", "verify-evidence", "/nonexistent"])
    assert old_env.exit_code == 2
    assert "warning: SEALPOST_DIRECTORY_PIN is deprecated; use SEALPOST_DIRECTORY_KEY" in (
        old_env.output
    )
    assert "64 hexadecimal digits" in old_env.output


def test_help_names_only_commands_that_exist() -> None:
    admin_key = ROOT.commands["admin"].commands["key"]
    for word in ("retention",):
        if word in (admin_key.help or "").split(":")[0]:
            assert word in admin_key.commands, f"`admin key` help names {word}"
    usage = CliRunner().invoke(app, ["demo", "--help"]).output
    if "COMMAND" in usage:
        assert getattr(ROOT.commands["demo"], "commands", {}), "demo --help shows a COMMAND"


def test_tables_line_up() -> None:
    text = _cli.table(("waited", "message id"), [("3h 05m", "ab" * 16), ("45s", "cd" * 16)])
    lines = text.splitlines()
    assert [line.index("message id" if i == 0 else line.split()[-1]) for i, line in
            enumerate(lines)] == [8, 8, 8]  # fmt: skip


def test_enum_values_in_json_are_short_words() -> None:
    regime = admin_pb2.Regime(name="x", policy=common_pb2.REGIME_POLICY_SCREEN_ALL)
    assert _cli.message_json(regime)["policy"] == "screen_all"
    assert enum_word(common_pb2.LegalBasis, common_pb2.LEGAL_BASIS_SCREENING_ORDER) == (
        "screening_order"
    )


def test_failures_are_reported_in_one_place() -> None:
    # Every "error: ..." line comes from _cli.report (one sentence, JSON under --json, the
    # exit-code table); a program printing its own would bypass all three.
    root = Path(sealpost_package.__file__).resolve().parent
    allowed = {(root / "clients" / "_cli.py").resolve(), root / "command.py"}
    offenders = []
    for folder in (root, *(p.resolve() for p in root.iterdir() if p.is_symlink())):
        for path in folder.rglob("*.py"):
            if path.resolve() in allowed or "/v1/" in str(path):
                continue
            text = path.read_text(encoding="utf-8")
            if re.search(r"""["']error: """, text):
                offenders.append(str(path))
    assert offenders == []
