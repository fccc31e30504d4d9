"""An AgentRun from `kubectl apply` to its answer in `status.result`, on one machine.

Each test applies YAML with the real kubectl to `sympozium up` (local cluster, CRDs,
controller-manager) with the scripted LLM double standing in for the provider.
"""

from __future__ import annotations

import functools
import json
import urllib.request
from typing import Any

import yaml

from e2e.conftest import MAX_RUN_HISTORY, System, get, wait_for, wait_phase
from tests.integration.conftest import Kubectl

SIDECAR_IMAGE = "ghcr.io/sympozium-ai/sympozium:latest"


def apply(kubectl: Kubectl, namespace: str, *docs: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs))


def instance(name: str = "inst", policy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"agents": {"default": {"model": "echo"}}}
    if policy:
        spec["policyRef"] = policy
    return {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "SympoziumInstance",
        "metadata": {"name": name},
        "spec": spec,
    }


def agent_run(
    system: System, name: str, model: str, instance_name: str = "inst", **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "instanceRef": instance_name,
        "agentId": "primary",
        "sessionKey": name,
        "task": f"task of {name}",
        "model": {
            "provider": "openai",
            "model": model,
            "baseURL": f"{system.llm_url}/v1",
            "authSecretRef": "",
        },
    }
    body.update(spec)
    return {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "AgentRun",
        "metadata": {"name": name},
        "spec": body,
    }


def shell_pack(rbac: bool = True) -> dict[str, Any]:
    sidecar: dict[str, Any] = {
        "image": SIDECAR_IMAGE,
        "command": ["sympozium", "agent", "tool-executor"],
        "env": [{"name": "GREETING", "value": "hello"}],
    }
    if rbac:
        sidecar["rbac"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]
    return {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "SkillPack",
        "metadata": {"name": "shell"},
        "spec": {
            "skills": [
                {"name": "shell", "description": "Run commands", "content": "Use execute_command."}
            ],
            "sidecar": sidecar,
        },
    }


def requests_to_double(system: System) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{system.llm_url}/_double/requests", timeout=10) as answer:
        loaded: list[dict[str, Any]] = json.loads(answer.read())
        return loaded


def events_of(kubectl: Kubectl, namespace: str, name: str) -> list[dict[str, Any]]:
    found = kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.name={name}",
        "-o",
        "json",
    )
    items: list[dict[str, Any]] = json.loads(found.stdout)["items"]
    return items


def gone(kubectl: Kubectl, kind: str, namespace: str, selector: str) -> bool:
    return not names(kubectl, kind, namespace, selector)


def names(kubectl: Kubectl, kind: str, namespace: str, selector: str) -> list[str]:
    found = kubectl("get", kind, "-n", namespace, "-l", selector, "-o", "name")
    return found.stdout.split()


def test_run_with_a_tool_call_succeeds(system: System, kubectl: Kubectl, namespace: str) -> None:
    apply(
        kubectl,
        namespace,
        instance(),
        agent_run(system, "hello", "tool-then-answer", cleanup="keep"),
    )
    run = wait_phase(kubectl, "hello", namespace, ("Succeeded", "Failed"))
    status = run["status"]
    assert status["phase"] == "Succeeded", status
    assert status["jobName"] == "hello"
    assert status["podName"].startswith("hello-")
    assert status["startedAt"] and status["completedAt"]
    assert status["exitCode"] == 0
    usage = status["tokenUsage"]
    assert usage["toolCalls"] == 1
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
    assert len(status["traceID"]) == 32
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Started"]["status"] == "True"
    assert conditions["Complete"]["status"] == "True"
    assert run["metadata"]["labels"]["sympozium.ai/instance"] == "inst"
    assert "otel.dev/traceparent" in run["metadata"]["annotations"]

    def finalizer_released() -> bool:
        # The reconcile after the terminal status write drops it: wait, it is not instant.
        latest = get(kubectl, "agentrun", "hello", namespace) or {}
        finalizers = (latest.get("metadata") or {}).get("finalizers") or []
        return "sympozium.ai/agentrun-finalizer" not in finalizers

    wait_for("the finalizer to be released", finalizer_released)
    # cleanup: keep leaves the Job and pod; the per-run objects carry the run label and owner
    selector = "sympozium.ai/agent-run=hello"
    assert names(kubectl, "jobs", namespace, selector) == ["job.batch/hello"]
    sa = get(kubectl, "serviceaccount", "hello", namespace)
    assert sa is not None and sa["metadata"]["ownerReferences"][0]["kind"] == "AgentRun"
    config = get(kubectl, "configmap", "hello-input", namespace)
    assert config is not None and config["data"]["task"] == "task of hello"
    policy = get(kubectl, "networkpolicy", "hello-egress", namespace)
    assert policy is not None and policy["spec"]["podSelector"]["matchLabels"] == {
        "sympozium.ai/agent-run": "hello"
    }
    pod = get(kubectl, "pod", status["podName"], namespace)
    assert pod is not None
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["TRACEPARENT"] == run["metadata"]["annotations"]["otel.dev/traceparent"]
    # Events are written in the background: wait for them, then check them.
    reasons = wait_for(
        "the Started and Succeeded events",
        lambda: (
            (found := {e["reason"] for e in events_of(kubectl, namespace, "hello")})
            >= {"Started", "Succeeded"}
            and found
        ),
    )
    assert {"Started", "Succeeded"} <= reasons


def test_command_runs_in_the_skill_sidecar(
    system: System, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        instance(),
        shell_pack(),
        agent_run(system, "exec", "exec-then-answer", skills=[{"skillPackRef": "shell"}]),
    )
    run = wait_phase(kubectl, "exec", namespace, ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert "hello from the sidecar" in run["status"]["result"]
    # cleanup: delete (the default) removes the Job; short-lived RBAC goes at completion
    selector = "sympozium.ai/agent-run=exec"
    wait_for("the Job to go", lambda: not names(kubectl, "jobs", namespace, selector))
    wait_for("the pod to go", lambda: not names(kubectl, "pods", namespace, selector))
    # The controller deleted that Job itself: the run must stay as it ended.
    kubectl("annotate", "agentrun", "exec", "-n", namespace, "poke=1")
    later = get(kubectl, "agentrun", "exec", namespace)
    assert later is not None and later["status"] == run["status"]
    assert names(kubectl, "roles", namespace, selector) == []
    assert names(kubectl, "rolebindings", namespace, selector) == []
    skills = get(kubectl, "configmap", "exec-skills", namespace)
    assert skills is not None and "Use execute_command." in skills["data"]["shell-shell.md"]


def test_provider_error_fails_the_run_with_its_message(
    system: System, kubectl: Kubectl, namespace: str
) -> None:
    apply(kubectl, namespace, instance(), agent_run(system, "denied-key", "fail-401"))
    run = wait_phase(kubectl, "denied-key", namespace, ("Succeeded", "Failed"))
    status = run["status"]
    assert status["phase"] == "Failed"
    assert "401" in status["error"]
    assert status["exitCode"] == 1
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Failed"]["status"] == "True"


def test_timeout_fails_the_run_naming_it(system: System, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, instance(), agent_run(system, "sleepy", "slow", timeout="3s"))
    run = wait_phase(kubectl, "sleepy", namespace, ("Succeeded", "Failed"), timeout=90)
    assert run["status"]["phase"] == "Failed"
    assert "timed out after 3" in run["status"]["error"]


def test_denied_tool_is_not_offered_and_a_forced_call_is_refused(
    system: System, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        instance(),
        agent_run(system, "no-list", "tool-then-answer", toolPolicy={"deny": ["list_directory"]}),
    )
    run = wait_phase(kubectl, "no-list", namespace, ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert "not allowed by policy" in run["status"]["result"]
    offered = [
        request["tools"]
        for request in requests_to_double(system)
        if "task of no-list" in json.dumps(request.get("messages"))
    ]
    assert offered, "the double saw no request of this run"
    assert all("list_directory" not in tools for tools in offered)
    assert all("read_file" in tools for tools in offered)


def test_policy_violation_fails_once(system: System, kubectl: Kubectl, namespace: str) -> None:
    policy = {
        "apiVersion": "sympozium.ai/v1alpha1",
        "kind": "SympoziumPolicy",
        "metadata": {"name": "shallow"},
        "spec": {"subagentPolicy": {"maxDepth": 1, "maxConcurrent": 5}},
    }
    child = agent_run(
        system,
        "too-deep",
        "instant",
        instance_name="guarded",
        parent={"runName": "root", "sessionKey": "s", "spawnDepth": 2},
    )
    apply(kubectl, namespace, policy, instance("guarded", policy="shallow"), child)
    run = wait_phase(kubectl, "too-deep", namespace, ("Succeeded", "Failed", "Running"))
    assert run["status"]["phase"] == "Failed"
    assert run["status"]["error"] == "policy validation failed: sub-agent depth 2 exceeds max 1"
    assert names(kubectl, "jobs", namespace, "sympozium.ai/agent-run=too-deep") == []
    version = run["metadata"]["resourceVersion"]
    # Touch the run: a reconcile follows, and must leave the failed run alone.
    kubectl("annotate", "agentrun", "too-deep", "-n", namespace, "touched=yes")
    wait_for(
        "the annotation to be seen",
        lambda: (
            (get(kubectl, "agentrun", "too-deep", namespace) or {})["metadata"]["resourceVersion"]
            != version
        ),
    )
    later = get(kubectl, "agentrun", "too-deep", namespace)
    assert later is not None
    assert later["status"] == run["status"]
    denied = wait_for(
        "the PolicyDenied event",
        lambda: [
            e for e in events_of(kubectl, namespace, "too-deep") if e["reason"] == "PolicyDenied"
        ],
    )
    assert len(denied) == 1 and denied[0].get("count", 1) == 1


def test_missing_instance_fails(system: System, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, agent_run(system, "orphan", "instant", instance_name="nowhere"))
    run = wait_phase(kubectl, "orphan", namespace, ("Failed", "Succeeded"))
    assert run["status"]["error"].startswith(
        'policy validation failed: SympoziumInstance "nowhere" not found'
    )


def test_deleting_a_running_run_removes_everything(
    system: System, kubectl: Kubectl, namespace: str
) -> None:
    apply(
        kubectl,
        namespace,
        instance(),
        shell_pack(),
        agent_run(system, "doomed", "slow", skills=[{"skillPackRef": "shell"}]),
    )
    wait_phase(kubectl, "doomed", namespace, ("Running",))
    selector = "sympozium.ai/agent-run=doomed"
    pods = wait_for("the pod", lambda: names(kubectl, "pods", namespace, selector))

    def pod_name_recorded() -> bool:
        run = get(kubectl, "agentrun", "doomed", namespace) or {}
        return f"pod/{(run.get('status') or {}).get('podName')}" in pods

    wait_for("status.podName of the running run", pod_name_recorded)
    for kind in (
        "jobs",
        "roles",
        "rolebindings",
        "networkpolicies",
        "serviceaccounts",
        "configmaps",
    ):
        assert names(kubectl, kind, namespace, selector), kind
    kubectl("delete", "agentrun", "doomed", "-n", namespace, "--wait=true", timeout=60)
    for kind in (
        "jobs",
        "pods",
        "roles",
        "rolebindings",
        "networkpolicies",
        "serviceaccounts",
        "configmaps",
    ):
        wait_for(
            f"{kind} of the run to go", functools.partial(gone, kubectl, kind, namespace, selector)
        )


def test_history_is_pruned_per_instance(system: System, kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, instance("busy"))
    total = MAX_RUN_HISTORY + 2
    for index in range(total):
        name = f"run-{index}"
        apply(kubectl, namespace, agent_run(system, name, "instant", instance_name="busy"))
        assert (
            wait_phase(kubectl, name, namespace, ("Succeeded", "Failed"))["status"]["phase"]
            == "Succeeded"
        )

    def remaining() -> list[str] | None:
        found = names(kubectl, "agentruns", namespace, "sympozium.ai/instance=busy")
        return found if len(found) == MAX_RUN_HISTORY else None

    kept = wait_for("pruning", remaining)
    assert sorted(kept) == [f"agentrun.sympozium.ai/run-{i}" for i in range(2, total)]


def test_metrics_count_finished_runs(system: System, kubectl: Kubectl, namespace: str) -> None:
    apply(
        kubectl,
        namespace,
        instance("counted"),
        agent_run(system, "count-me", "instant", instance_name="counted"),
    )
    wait_phase(kubectl, "count-me", namespace, ("Succeeded",))

    def scraped() -> str | None:
        with urllib.request.urlopen(system.metrics_url, timeout=10) as answer:
            text: str = answer.read().decode()
        wanted = 'sympozium_agent_status="succeeded",sympozium_instance="counted"'
        return text if wanted in text else None

    text = wait_for("the run counter", scraped)
    assert "sympozium_agent_runs_total" in text
    assert "controller_runtime_reconcile_total" in text


def test_the_readme_example_runs(system: System, kubectl: Kubectl, namespace: str) -> None:
    from pathlib import Path

    docs = list(yaml.safe_load_all(Path("examples/agentrun-hello.yaml").read_text()))
    for doc in docs:
        if doc["kind"] == "AgentRun":
            model = doc["spec"]["model"]
            assert model["baseURL"] == "http://127.0.0.1:8900/v1"  # what the README promises
            model["baseURL"] = f"{system.llm_url}/v1"  # this test's double
    apply(kubectl, namespace, *docs)
    run = wait_phase(kubectl, "hello", namespace, ("Succeeded", "Failed"))
    assert run["status"]["phase"] == "Succeeded", run["status"]
    assert run["status"]["result"] == "echo: Say hello"


def test_memory_is_read_and_written_back(system: System, kubectl: Kubectl, namespace: str) -> None:
    remembering = instance("keeper")
    remembering["spec"]["memory"] = {"enabled": True}
    memory = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "keeper-memory"},
        "data": {"MEMORY.md": "- old fact: the user lives in Lyon"},
    }
    run = agent_run(system, "recall", "remember", instance_name="keeper")
    apply(kubectl, namespace, remembering, memory, run)
    done = wait_phase(kubectl, "recall", namespace, ("Succeeded", "Failed"))
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert done["status"]["result"].strip() == "noted"  # the block is not part of the answer
    stored = get(kubectl, "configmap", "keeper-memory", namespace)
    assert stored is not None and stored["data"]["MEMORY.md"] == "- the user likes tea"
    seen = [
        json.dumps(request.get("messages"))
        for request in requests_to_double(system)
        if "task of recall" in json.dumps(request.get("messages"))
    ]
    assert seen and all("the user lives in Lyon" in messages for messages in seen)
