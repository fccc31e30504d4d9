"""The reconciler's pure rules: outcome from the agent's log, tool policy, egress, durations."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from agent.protocol import AgentResult, RunMetrics, memory_marker, result_marker
from api.v1alpha1 import AgentRun, SympoziumPolicy
from reconcilers.agentrun import _outcome_from_log, effective_tool_policy, format_duration
from reconcilers.cli import bind_address
from reconcilers.networkpolicy import EgressNeeds, Endpoint, build_network_policy, model_endpoint


def success_log(response: str = "hi", tokens: int = 5, memory: str | None = None) -> str:
    result = AgentResult(
        status="success",
        response=response,
        metrics=RunMetrics(input_tokens=tokens, output_tokens=tokens, tool_calls=1, duration_ms=40),
    )
    return "starting\n" + (memory_marker(memory) if memory else "") + result_marker(result)


def test_success_takes_response_usage_and_memory() -> None:
    outcome = _outcome_from_log(success_log(memory="- likes tea"), 0, "Completed")
    assert outcome.succeeded and outcome.result == "hi" and outcome.exit_code == 0
    assert outcome.usage is not None and outcome.usage.metrics.tool_calls == 1
    assert outcome.memory == "- likes tea"


def test_usage_only_with_tokens() -> None:
    assert _outcome_from_log(success_log(tokens=0), 0, "").usage is None


def test_error_result_wins_over_exit_code() -> None:
    result = AgentResult(status="error", error="provider error: HTTP 401: bad key")
    outcome = _outcome_from_log(result_marker(result), 1, "Error")
    assert not outcome.succeeded
    assert outcome.error == "provider error: HTTP 401: bad key"
    assert outcome.exit_code == 1


def test_empty_error_text_gets_a_default() -> None:
    outcome = _outcome_from_log(result_marker(AgentResult(status="error", error="  ")), 1, "")
    assert outcome.error == "agent run failed"


def test_rate_limit_line_when_no_marker() -> None:
    log = "boot\nopenai said:   Error code: 429   too many requests, slow down\ntraceback\n"
    outcome = _outcome_from_log(log, 1, "Error")
    assert outcome.error == "openai said: Error code: 429 too many requests, slow down"


def test_exit_code_and_reason_as_last_resort() -> None:
    outcome = _outcome_from_log("Segmentation fault\n", 139, "Error")
    assert outcome.error == "agent container exited with code 139 (Error)"


def test_truncated_marker_is_ignored() -> None:
    log = success_log()
    broken = log[: log.rindex("__SYMPOZIUM_END__")]
    outcome = _outcome_from_log(broken, 0, "")
    assert outcome.succeeded and outcome.result == "" and outcome.usage is None


def agent_run(tool_policy: dict[str, Any] | None = None) -> AgentRun:
    spec: dict[str, Any] = {
        "instanceRef": "i",
        "agentId": "a",
        "sessionKey": "",
        "task": "t",
        "model": {"provider": "openai", "model": "m", "authSecretRef": ""},
    }
    if tool_policy is not None:
        spec["toolPolicy"] = tool_policy
    return AgentRun.from_obj({"metadata": {"name": "r", "namespace": "n"}, "spec": spec})


def policy(gating: dict[str, Any]) -> SympoziumPolicy:
    return SympoziumPolicy.from_obj({"metadata": {"name": "p"}, "spec": {"toolGating": gating}})


def test_tool_policy_is_the_runs_own_without_gating() -> None:
    run = agent_run({"allow": ["read_file", "list_directory"], "deny": ["write_file"]})
    assert effective_tool_policy(run, None) == {
        "allow": ["list_directory", "read_file"],
        "deny": ["write_file"],
    }
    assert effective_tool_policy(agent_run(), None) == {}


def test_gating_deny_and_ask_rules_deny() -> None:
    gated = policy(
        {
            "defaultAction": "allow",
            "rules": [
                {"tool": "write_file", "action": "deny"},
                {"tool": "execute_command", "action": "ask"},
            ],
        }
    )
    assert effective_tool_policy(agent_run(), gated) == {"deny": ["execute_command", "write_file"]}


def test_default_deny_allows_only_allowed_rules_and_intersects() -> None:
    gated = policy({"defaultAction": "deny", "rules": [{"tool": "read_file", "action": "allow"}]})
    assert effective_tool_policy(agent_run(), gated) == {"allow": ["read_file"]}
    narrowed = effective_tool_policy(agent_run({"allow": ["read_file", "write_file"]}), gated)
    assert narrowed == {"allow": ["read_file"]}
    disjoint = effective_tool_policy(agent_run({"allow": ["write_file"]}), gated)
    assert disjoint == {"allow": ["<none>"]}


def test_network_policy_selects_the_run_and_denies_by_default() -> None:
    needs = EgressNeeds(
        model=Endpoint("10.0.0.7", 11434),
        event_bus=Endpoint("nats.sympozium-system.svc", 4222),
        memory_server=True,
    )
    manifest = build_network_policy("r1", "ns", "inst", needs)
    spec = manifest["spec"]
    assert spec["podSelector"] == {"matchLabels": {"sympozium.ai/agent-run": "r1"}}
    assert spec["policyTypes"] == ["Ingress", "Egress"] and spec["ingress"] == []
    egress = spec["egress"]
    assert {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]} in egress
    assert {
        "ports": [{"protocol": "TCP", "port": 11434}],
        "to": [{"ipBlock": {"cidr": "10.0.0.7/32"}}],
    } in egress
    assert {
        "ports": [{"protocol": "TCP", "port": 4222}],
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "sympozium-system"}
                }
            }
        ],
    } in egress
    assert not any(443 in [p["port"] for p in rule.get("ports", [])] for rule in egress)
    assert manifest["metadata"]["labels"]["sympozium.ai/agent-run"] == "r1"


def test_hostname_endpoint_means_port_anywhere_and_deny_all_off_allows_all() -> None:
    assert model_endpoint("openai", None) == Endpoint("api.openai.com", 443)
    assert model_endpoint("custom", "http://127.0.0.1:8900/v1") == Endpoint("127.0.0.1", 8900)
    egress = build_network_policy(
        "r", "n", "i", EgressNeeds(model=Endpoint("api.openai.com", 443))
    )["spec"]["egress"]
    assert {"ports": [{"protocol": "TCP", "port": 443}]} in egress
    open_egress = build_network_policy("r", "n", "i", EgressNeeds(deny_all=False))["spec"]["egress"]
    assert open_egress == [{}]


@pytest.mark.parametrize(
    ("seconds", "text"), [(600, "10m0s"), (90, "1m30s"), (3725, "1h2m5s"), (2, "2s"), (0.5, "0.5s")]
)
def test_durations_read_like_go(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_bind_addresses() -> None:
    assert bind_address(":8080", "--x") == ("0.0.0.0", 8080)
    assert bind_address("127.0.0.1:0", "--x") == ("127.0.0.1", 0)
    assert bind_address("0", "--x") == ("", None)
    with pytest.raises(argparse.ArgumentTypeError, match="--x"):
        bind_address("localhost", "--x")


def test_egress_opens_to_the_runners_default_for_any_provider() -> None:
    # An unknown provider speaks OpenAI at api.openai.com in the runner: egress must follow.
    assert model_endpoint("groq-like", None) == Endpoint("api.openai.com", 443)
    assert model_endpoint("anthropic", None) == Endpoint("api.anthropic.com", 443)
    assert model_endpoint("ollama", None) == Endpoint("ollama.default.svc", 11434)
    assert model_endpoint("custom", None) is None  # the runner refuses it without a base URL
