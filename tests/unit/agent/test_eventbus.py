"""Envelopes and subjects of the event bus (no server)."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import pytest

from agent.eventbus import (
    DEDUP_HEADER,
    Envelope,
    _trace_headers,
    build_envelope,
    parse_envelope,
    rfc3339_now,
    subject_for,
)
from agent.protocol import AgentResult, RunMetrics, StreamChunk


def test_subject_is_prefixed_once() -> None:
    assert subject_for("agent.run.completed") == "sympozium.agent.run.completed"
    assert subject_for("sympozium.agent.followup.r1") == "sympozium.agent.followup.r1"


def test_envelope_embeds_bytes_verbatim() -> None:
    raw = b'{"status": "success",  "response": "hi \\u00e9"}\n'
    body = build_envelope(
        "agent.run.completed",
        raw,
        {"agentRunID": "r1", "instanceName": "i1"},
        timestamp="2026-01-02T03:04:05.000006Z",
    )
    assert raw.strip() in body  # spacing and escapes untouched
    parsed = json.loads(body)
    assert parsed == {
        "topic": "agent.run.completed",
        "timestamp": "2026-01-02T03:04:05.000006Z",
        "metadata": {"agentRunID": "r1", "instanceName": "i1"},
        "data": {"status": "success", "response": "hi \u00e9"},
    }
    assert list(parsed) == ["topic", "timestamp", "metadata", "data"]


def test_envelope_of_a_model_uses_wire_names() -> None:
    result = AgentResult(status="error", error="boom", metrics=RunMetrics(duration_ms=5))
    parsed = json.loads(build_envelope("agent.run.failed", result))
    assert parsed["metadata"] == {}
    assert parsed["data"]["metrics"]["durationMs"] == 5
    assert parsed["data"]["error"] == "boom"
    assert "response" not in parsed["data"]


@pytest.mark.parametrize("bad", [b"", b"not json", b'{"a": ', b"\xff\xfe"])
def test_envelope_refuses_data_that_is_not_json(bad: bytes) -> None:
    with pytest.raises(ValueError):
        build_envelope("agent.stream.chunk", bad)


def test_timestamp_is_rfc3339_utc() -> None:
    stamp = rfc3339_now()
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_parse_envelope_round_trip_and_typed_data() -> None:
    chunk = StreamChunk(content="hello", index=3)
    envelope = parse_envelope(build_envelope("agent.stream.chunk", chunk, {"agentRunID": "r"}))
    assert envelope.topic == "agent.stream.chunk"
    assert envelope.metadata == {"agentRunID": "r"}
    assert envelope.data_as(StreamChunk) == chunk
    assert json.loads(envelope.data_json()) == {"type": "text", "content": "hello", "index": 3}


def test_parse_envelope_wraps_bare_json_and_rejects_garbage() -> None:
    envelope = parse_envelope(b'{"text": "more"}', "sympozium.agent.followup.r1")
    assert envelope == Envelope(
        topic="agent.followup.r1", timestamp=envelope.timestamp, data={"text": "more"}
    )
    with pytest.raises(ValueError):
        parse_envelope(b"nope", "sympozium.x")


def test_trace_headers() -> None:
    assert _trace_headers(None, "ignored-without-parent", None) is None
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    assert _trace_headers(parent, "k=v", "id-1") == {
        "traceparent": parent,
        "tracestate": "k=v",
        DEDUP_HEADER: "id-1",
    }


def test_importing_the_bus_does_not_import_nats() -> None:
    # The bridge runs without NATS; its startup must not pay for importing the client.
    import subprocess

    code = "import agent.bridge, agent.eventbus, sys; print('nats' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
