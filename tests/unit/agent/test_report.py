"""The exit protocol: markers on stdout, files under /ipc, in that order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.protocol import AgentResult, RunMetrics, find_memory, find_result
from agent.runner import EXIT_CONFIG, Outcome, main, report


@pytest.fixture
def ipc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("IPC_PATH", str(tmp_path))
    return tmp_path


def test_success_with_memory(ipc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = AgentResult(status="success", response="hi", metrics=RunMetrics(input_tokens=3))
    report(Outcome(result, memory="- remembered"))
    out = capsys.readouterr().out
    assert find_result(out) == result
    assert find_memory(out) == "- remembered"
    assert out.index("__SYMPOZIUM_MEMORY__") < out.index("__SYMPOZIUM_RESULT__")
    assert json.loads((ipc / "output" / "stream-0.json").read_text()) == {
        "type": "text",
        "content": "hi",
        "index": 0,
    }
    assert AgentResult.model_validate_json((ipc / "output" / "result.json").read_text()) == result
    assert (ipc / "done").exists()


def test_error_has_no_stream_file(ipc: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report(Outcome(AgentResult(status="error", error="boom")))
    out = capsys.readouterr().out
    parsed = find_result(out)
    assert parsed is not None and parsed.error == "boom"
    assert find_memory(out) is None
    assert not (ipc / "output" / "stream-0.json").exists()
    assert (ipc / "output" / "result.json").exists()
    assert (ipc / "done").exists()


def test_missing_ipc_volume_is_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPC_PATH", str(tmp_path / "absent"))
    report(Outcome(AgentResult(status="success", response="x")))
    assert find_result(capsys.readouterr().out) is not None
    assert not (tmp_path / "absent").exists()


def test_bad_configuration_exits_2_with_a_marker(
    ipc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main({"TASK": "t", "MODEL_PROVIDER": "bedrock"}) == EXIT_CONFIG
    captured = capsys.readouterr()
    parsed = find_result(captured.out)
    assert parsed is not None and parsed.status == "error"
    assert parsed.error == (
        "configuration error: MODEL_PROVIDER: provider bedrock is not supported by this runner"
    )
    assert "provider bedrock is not supported" in captured.err
    assert (ipc / "done").exists()
