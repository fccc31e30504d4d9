"""The Job of a run: containers, env, volumes and hardening, from the run's inputs."""

from __future__ import annotations

import json
from typing import Any

from api.v1alpha1 import AgentRun, SkillSidecar
from reconcilers import labels
from reconcilers.podbuilder import (
    PodInputs,
    ResolvedSkill,
    build_job,
    host_volume_name,
    skill_param_env,
)


def run(**spec: Any) -> AgentRun:
    base: dict[str, Any] = {
        "instanceRef": "inst",
        "agentId": "primary",
        "sessionKey": "s1",
        "task": "do it",
        "model": {"provider": "openai", "model": "gpt-4o", "authSecretRef": "keys"},
    }
    base.update(spec)
    return AgentRun.from_obj(
        {
            "apiVersion": "sympozium.ai/v1alpha1",
            "kind": "AgentRun",
            "metadata": {"name": "r1", "namespace": "ns", "uid": "u1"},
            "spec": base,
        }
    )


def containers(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in job["spec"]["template"]["spec"]["containers"]}


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def inputs(**overrides: Any) -> PodInputs:
    values: dict[str, Any] = {"instance": "inst", "service_account": "r1"}
    values.update(overrides)
    return PodInputs(**values)


def test_job_labels_and_backstop_deadline() -> None:
    job = build_job(run(), inputs(timeout_seconds=120))
    expected = labels.run_labels("r1", "inst")
    assert job["metadata"]["labels"] == expected
    assert job["spec"]["template"]["metadata"]["labels"] == expected
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 180
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "r1"


def test_agent_and_bridge_are_hardened_and_share_ipc() -> None:
    job = build_job(run(), inputs())
    found = containers(job)
    assert list(found) == ["agent", "ipc-bridge"]
    for container in found.values():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"name": "ipc", "mountPath": "/ipc"} in container["volumeMounts"]
        assert container["resources"]["limits"]
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert found["agent"]["envFrom"] == [{"secretRef": {"name": "keys"}}]
    assert found["agent"]["args"] == ["agent", "run"]


def test_agent_env_carries_model_policy_timeout_and_trace() -> None:
    policy = {"allow": ["read_file"], "deny": ["write_file"]}
    job = build_job(
        run(
            env={"B": "2", "A": "1"},
            model={"provider": "anthropic", "model": "m", "authSecretRef": "", "thinking": "high"},
        ),
        inputs(
            tool_policy=policy,
            timeout_seconds=90,
            traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        ),
    )
    agent = containers(job)["agent"]
    env = env_of(agent)
    assert env["MODEL_PROVIDER"] == "anthropic"
    assert env["THINKING_MODE"] == "high"
    assert json.loads(env["TOOL_POLICY"]) == policy
    assert env["AGENT_TIMEOUT_SECONDS"] == "90"
    assert env["TASK_FILE"] == "/input/task"
    assert env["TRACEPARENT"].startswith("00-aaaa")
    assert env["EXEC_SIDECARS"] == ""
    names = [e["name"] for e in agent["env"]]
    assert names.index("A") < names.index("B")  # spec.env sorted
    assert "envFrom" not in agent  # authSecretRef "" means no Secret
    assert env_of(containers(job)["ipc-bridge"])["TRACEPARENT"] == env["TRACEPARENT"]


def test_input_config_map_is_mounted() -> None:
    job = build_job(run(), inputs())
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    assert volumes["input"] == {"name": "input", "configMap": {"name": "r1-input"}}
    assert {"name": "input", "mountPath": "/input", "readOnly": True} in containers(job)["agent"][
        "volumeMounts"
    ]
    assert volumes["ipc"]["emptyDir"]["medium"] == "Memory"


def test_skill_sidecar_gets_params_secret_and_exec_role() -> None:
    sidecar = SkillSidecar.model_validate(
        {
            "image": "ghcr.io/sympozium-ai/sympozium:latest",
            "command": ["sympozium", "agent", "tool-executor"],
            "env": [{"name": "GIT_AUTHOR", "value": "bot"}],
            "secretRef": "gh-token",
            "rbac": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}],
        }
    )
    skill = ResolvedSkill("github", sidecar, {"repo": "a/b", "rate-limit": "5"})
    job = build_job(run(), inputs(skills=(skill,), skill_config_maps=("r1-skills",)))
    found = containers(job)
    side = found["skill-github"]
    env = env_of(side)
    assert env == {"GIT_AUTHOR": "bot", "SKILL_RATE_LIMIT": "5", "SKILL_REPO": "a/b"}
    assert side["command"] == ["sympozium", "agent", "tool-executor"]
    assert {
        "name": "skill-secret-github",
        "mountPath": "/secrets/gh-token",
        "readOnly": True,
    } in side["volumeMounts"]
    assert (
        side["resources"]["requests"]
        == side["resources"]["limits"]
        == {"cpu": "100m", "memory": "128Mi"}
    )
    assert env_of(found["agent"])["EXEC_SIDECARS"] == "skill-github"
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["skills"]["projected"]["sources"] == [
        {"configMap": {"name": "r1-skills", "optional": True}}
    ]


def test_sandbox_of_our_image_executes_commands_custom_image_sleeps() -> None:
    ours = build_job(run(sandbox={"enabled": True}), inputs())
    sandbox = containers(ours)["sandbox"]
    assert sandbox["args"] == ["agent", "tool-executor"]
    assert env_of(containers(ours)["agent"])["EXEC_SIDECARS"] == "sandbox"
    custom = build_job(run(sandbox={"enabled": True, "image": "alpine:3"}), inputs())
    assert containers(custom)["sandbox"]["command"] == ["sleep", "infinity"]
    assert env_of(containers(custom)["agent"])["EXEC_SIDECARS"] == ""
    required = build_job(run(), inputs(sandbox_required=True))
    assert "sandbox" in containers(required)


def test_host_access_loosens_only_that_sidecar() -> None:
    sidecar = SkillSidecar.model_validate(
        {
            "image": "x-sympozium",
            "hostAccess": {
                "enabled": True,
                "hostPID": True,
                "runAsRoot": True,
                "mounts": [{"hostPath": "/proc", "mountPath": "/host/proc"}],
            },
        }
    )
    job = build_job(run(), inputs(skills=(ResolvedSkill("llmfit", sidecar),)))
    pod = job["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    side = containers(job)["skill-llmfit"]
    assert side["securityContext"] == {"runAsUser": 0, "runAsNonRoot": False}
    assert containers(job)["agent"]["securityContext"]["readOnlyRootFilesystem"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["host-llmfit-0"] == {"name": "host-llmfit-0", "hostPath": {"path": "/proc"}}


def test_names_and_param_env_are_normalised() -> None:
    assert host_volume_name("My_Pack!", 2) == "host-my-pack--2"
    assert len(host_volume_name("p" * 100, 1)) <= 63
    assert skill_param_env({"b": "2", "a-x": "1"}) == [("SKILL_A_X", "1"), ("SKILL_B", "2")]
