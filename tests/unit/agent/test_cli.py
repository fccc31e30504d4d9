"""`sympozium agent` wiring: sidecar subcommands load their module only when chosen."""

from __future__ import annotations

import argparse
import sys
import types

import pytest

from agent import cli


def _fake_module(calls: list[argparse.Namespace]) -> types.ModuleType:
    module = types.ModuleType("fake_sidecar")

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--poll", type=float, default=0.2)

    async def run(args: argparse.Namespace) -> int:
        calls.append(args)
        return 7

    module.add_arguments = add_arguments  # type: ignore[attr-defined]
    module.run = run  # type: ignore[attr-defined]
    return module


def test_lazy_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[argparse.Namespace] = []
    monkeypatch.setitem(sys.modules, "fake_sidecar", _fake_module(calls))
    monkeypatch.setattr(cli, "_LAZY", {"tool-executor": ("fake_sidecar", "help")})
    parser = argparse.ArgumentParser(prog="sympozium agent")
    cli.add_arguments(parser)
    args = parser.parse_args(["tool-executor", "--poll", "0.5"])
    assert args.func(args) == 7
    assert calls[0].poll == 0.5


def test_missing_module_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "_LAZY", {"ipc-bridge": ("agent.does_not_exist", "help")})
    parser = argparse.ArgumentParser(prog="sympozium agent")
    cli.add_arguments(parser)
    args = parser.parse_args(["ipc-bridge"])
    assert args.func(args) == 2
    assert "is not available" in capsys.readouterr().err


def test_run_does_not_import_sidecars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "agent.bridge", raising=False)
    monkeypatch.delitem(sys.modules, "agent.executor", raising=False)
    parser = argparse.ArgumentParser(prog="sympozium agent")
    cli.add_arguments(parser)
    args = parser.parse_args(["run"])
    assert args.func is cli._run
    assert "agent.bridge" not in sys.modules and "agent.executor" not in sys.modules
