"""The Job of a task-mode AgentRun: one pod with the agent, its IPC bridge and sidecars.

Pure functions from the run's resolved inputs to a Job manifest, so what a run's pod
looks like can be read (and tested) in one place (reconcilers.md §4, with the fixes of
gaps.md: the input ConfigMap is mounted, the tool policy reaches the runner, the trace
context reaches the agent and the bridge, and every run has its own ServiceAccount).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from api.v1alpha1 import AgentRun, SkillSidecar
from reconcilers import labels

AGENT_CONTAINER = "agent"
BRIDGE_CONTAINER = "ipc-bridge"
SANDBOX_CONTAINER = "sandbox"
DEFAULT_AGENT_IMAGE = "ghcr.io/sympozium-ai/sympozium:latest"

# Restricted pod security: what every container gets unless a skill asks for host access.
HARDENED: dict[str, Any] = {
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class ResolvedSkill:
    """A skill pack whose sidecar joins the pod, with the run's parameters for it."""

    pack: str
    sidecar: SkillSidecar
    params: dict[str, str] = field(default_factory=dict)

    @property
    def container(self) -> str:
        return f"skill-{self.pack}"


@dataclass(frozen=True)
class PodInputs:
    """Everything the pod depends on besides the run itself, resolved by the reconciler."""

    instance: str
    service_account: str
    agent_image: str = DEFAULT_AGENT_IMAGE
    event_bus_url: str = ""
    skills: tuple[ResolvedSkill, ...] = ()
    skill_config_maps: tuple[str, ...] = ()
    memory_enabled: bool = False
    tool_policy: dict[str, list[str]] = field(default_factory=dict)
    timeout_seconds: float = 600.0
    traceparent: str = ""
    observability_env: tuple[tuple[str, str], ...] = ()
    sandbox_required: bool = False


def input_config_map_name(run: str) -> str:
    return f"{run}-input"


def resources(requests: tuple[str, str], limits: tuple[str, str]) -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": requests[0], "memory": requests[1]},
        "limits": {"cpu": limits[0], "memory": limits[1]},
    }


def _env(pairs: dict[str, str] | list[tuple[str, str]]) -> list[dict[str, Any]]:
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return [{"name": name, "value": value} for name, value in items]


def skill_param_env(params: dict[str, str]) -> list[tuple[str, str]]:
    """`SKILL_<UPPER(key)>` per parameter, sorted so the pod spec is stable across reconciles."""
    return [(f"SKILL_{re.sub(r'[^A-Z0-9]', '_', k.upper())}", v) for k, v in sorted(params.items())]


def host_volume_name(pack: str, index: int) -> str:
    raw = re.sub(r"[^a-z0-9]", "-", f"host-{pack}-{index}".lower()).strip("-")
    return raw[:63].rstrip("-")


def exec_containers(run: AgentRun, inputs: PodInputs) -> list[str]:
    """Containers that execute the agent's commands: the sandbox first, then skill sidecars."""
    names = [SANDBOX_CONTAINER] if _sandbox_runs_commands(run, inputs) else []
    return names + [skill.container for skill in inputs.skills]


def _sandbox_enabled(run: AgentRun, inputs: PodInputs) -> bool:
    sandbox = run.spec.sandbox
    return inputs.sandbox_required or bool(sandbox is not None and sandbox.enabled)


def _sandbox_image(run: AgentRun, inputs: PodInputs) -> str:
    sandbox = run.spec.sandbox
    return (sandbox.image if sandbox is not None and sandbox.image else "") or inputs.agent_image


def _sandbox_runs_commands(run: AgentRun, inputs: PodInputs) -> bool:
    # Our own image executes commands in the sandbox; a custom image can only hold files.
    return _sandbox_enabled(run, inputs) and _sandbox_image(run, inputs) == inputs.agent_image


def agent_env(run: AgentRun, inputs: PodInputs) -> list[dict[str, Any]]:
    spec, meta = run.spec, run.metadata
    name, namespace = meta.name or "", meta.namespace or ""
    env: list[tuple[str, str]] = [
        ("AGENT_RUN_ID", name),
        ("AGENT_ID", spec.agent_id),
        ("SESSION_KEY", spec.session_key or ""),
        ("INSTANCE_NAME", inputs.instance),
        ("AGENT_NAMESPACE", namespace),
        ("TASK_FILE", "/input/task"),
        ("SYSTEM_PROMPT_FILE", "/input/system-prompt"),
        ("MODEL_PROVIDER", spec.model.provider),
        ("MODEL_NAME", spec.model.model),
        ("MODEL_BASE_URL", spec.model.base_url or ""),
        ("THINKING_MODE", spec.model.thinking or ""),
        ("AGENT_TIMEOUT_SECONDS", f"{inputs.timeout_seconds:g}"),
        ("TOOLS_ENABLED", "true"),
        ("TOOL_POLICY", json.dumps(inputs.tool_policy, sort_keys=True)),
        ("EXEC_SIDECARS", ",".join(exec_containers(run, inputs))),
    ]
    if inputs.memory_enabled:
        env.append(("MEMORY_ENABLED", "true"))
    env.extend(sorted((spec.env or {}).items()))
    annotations = meta.annotations or {}
    if annotations.get(labels.REPLY_CHANNEL):
        env.append(("SOURCE_CHANNEL", annotations[labels.REPLY_CHANNEL]))
        env.append(("SOURCE_CHAT_ID", annotations.get(labels.REPLY_CHAT_ID, "")))
    if inputs.traceparent:
        env.append(("TRACEPARENT", inputs.traceparent))
    env.extend(inputs.observability_env)
    return _env(env)


def _agent_container(run: AgentRun, inputs: PodInputs) -> dict[str, Any]:
    mounts = [
        {"name": "workspace", "mountPath": "/workspace"},
        {"name": "skills", "mountPath": "/skills", "readOnly": True},
        {"name": "ipc", "mountPath": "/ipc"},
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "input", "mountPath": "/input", "readOnly": True},
    ]
    if inputs.memory_enabled:
        mounts.append({"name": "memory", "mountPath": "/memory", "readOnly": True})
    container: dict[str, Any] = {
        "name": AGENT_CONTAINER,
        "image": inputs.agent_image,
        "args": ["agent", "run"],
        "env": agent_env(run, inputs),
        "volumeMounts": mounts,
        "resources": resources(("250m", "512Mi"), ("1", "1Gi")),
        "securityContext": dict(HARDENED),
    }
    secret = run.spec.model.auth_secret_ref
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    return container


def _bridge_container(run: AgentRun, inputs: PodInputs) -> dict[str, Any]:
    env = [
        ("AGENT_RUN_ID", run.metadata.name or ""),
        ("INSTANCE_NAME", inputs.instance),
        ("AGENT_NAMESPACE", run.metadata.namespace or ""),
    ]
    if inputs.event_bus_url:
        env.append(("EVENT_BUS_URL", inputs.event_bus_url))
    if inputs.traceparent:
        env.append(("TRACEPARENT", inputs.traceparent))
    env.extend(inputs.observability_env)
    return {
        "name": BRIDGE_CONTAINER,
        "image": inputs.agent_image,
        "args": ["agent", "ipc-bridge"],
        "env": _env(env),
        "volumeMounts": [{"name": "ipc", "mountPath": "/ipc"}],
        "resources": resources(("50m", "64Mi"), ("100m", "128Mi")),
        "securityContext": dict(HARDENED),
    }


def _sandbox_container(run: AgentRun, inputs: PodInputs) -> dict[str, Any]:
    image = _sandbox_image(run, inputs)
    container: dict[str, Any] = {
        "name": SANDBOX_CONTAINER,
        "image": image,
        "volumeMounts": [
            {"name": "workspace", "mountPath": "/workspace"},
            {"name": "ipc", "mountPath": "/ipc"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "resources": resources(("100m", "256Mi"), ("500m", "512Mi")),
        "securityContext": dict(HARDENED),
    }
    if _sandbox_runs_commands(run, inputs):
        container["args"] = ["agent", "tool-executor"]
    else:
        container["command"] = ["sleep", "infinity"]
    return container


def _skill_container(skill: ResolvedSkill, volumes: list[dict[str, Any]]) -> dict[str, Any]:
    sidecar = skill.sidecar
    env = [(item.name, item.value) for item in sidecar.env or ()]
    env.extend(skill_param_env(skill.params))
    mounts: list[dict[str, Any]] = [
        {"name": "ipc", "mountPath": "/ipc"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if sidecar.mount_workspace:
        mounts.append({"name": "workspace", "mountPath": "/workspace"})
    access = sidecar.host_access
    if access is not None and access.enabled:
        for index, mount in enumerate(access.mounts or ()):
            volume = host_volume_name(skill.pack, index)
            volumes.append({"name": volume, "hostPath": {"path": mount.host_path}})
            mounts.append(
                {"name": volume, "mountPath": mount.mount_path, "readOnly": mount.read_only}
            )
    if sidecar.secret_ref:
        volume = f"skill-secret-{skill.pack}"
        volumes.append(
            {"name": volume, "secret": {"secretName": sidecar.secret_ref, "optional": True}}
        )
        path = sidecar.secret_mount_path or f"/secrets/{sidecar.secret_ref}"
        mounts.append({"name": volume, "mountPath": path, "readOnly": True})
    cpu = (sidecar.resources.cpu if sidecar.resources else None) or "100m"
    memory = (sidecar.resources.memory if sidecar.resources else None) or "128Mi"
    container: dict[str, Any] = {
        "name": skill.container,
        "image": sidecar.image,
        "env": _env(env),
        "volumeMounts": mounts,
        "resources": resources((cpu, memory), (cpu, memory)),
        "securityContext": _skill_security(sidecar),
    }
    if sidecar.command:
        container["command"] = list(sidecar.command)
    return container


def _skill_security(sidecar: SkillSidecar) -> dict[str, Any]:
    access = sidecar.host_access
    if access is None or not access.enabled:
        return dict(HARDENED)
    context: dict[str, Any] = {}
    if access.privileged:
        context.update(
            privileged=True,
            allowPrivilegeEscalation=True,
            seccompProfile={"type": "Unconfined"},
        )
    if access.run_as_root:
        context.update(runAsUser=0, runAsNonRoot=False)
    return context


def _volumes(run: AgentRun, inputs: PodInputs) -> list[dict[str, Any]]:
    name = run.metadata.name or ""
    volumes: list[dict[str, Any]] = [
        {"name": "workspace", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "ipc", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        {"name": "input", "configMap": {"name": input_config_map_name(name)}},
    ]
    if inputs.skill_config_maps:
        sources = [{"configMap": {"name": cm, "optional": True}} for cm in inputs.skill_config_maps]
        volumes.append({"name": "skills", "projected": {"sources": sources}})
    else:
        volumes.append({"name": "skills", "emptyDir": {}})
    if inputs.memory_enabled:
        volumes.append(
            {"name": "memory", "configMap": {"name": f"{inputs.instance}-memory", "optional": True}}
        )
    return volumes


def build_job(run: AgentRun, inputs: PodInputs) -> dict[str, Any]:
    """The Job manifest for a task-mode run (owner reference added by the caller)."""
    name = run.metadata.name or ""
    pod_labels = labels.run_labels(name, inputs.instance)
    volumes = _volumes(run, inputs)
    containers = [_agent_container(run, inputs), _bridge_container(run, inputs)]
    if _sandbox_enabled(run, inputs):
        containers.append(_sandbox_container(run, inputs))
    containers.extend(_skill_container(skill, volumes) for skill in inputs.skills)
    host_network = any(
        skill.sidecar.host_access is not None
        and skill.sidecar.host_access.enabled
        and skill.sidecar.host_access.host_network
        for skill in inputs.skills
    )
    host_pid = any(
        skill.sidecar.host_access is not None
        and skill.sidecar.host_access.enabled
        and skill.sidecar.host_access.host_pid
        for skill in inputs.skills
    )
    sandbox = run.spec.sandbox
    seccomp = "RuntimeDefault"
    if sandbox is not None and sandbox.security_context is not None:
        profile = sandbox.security_context.seccomp_profile
        if profile is not None and profile.type:
            seccomp = profile.type
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "serviceAccountName": inputs.service_account,
        "automountServiceAccountToken": any(
            skill.sidecar.rbac or skill.sidecar.cluster_rbac for skill in inputs.skills
        ),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "seccompProfile": {"type": seccomp},
        },
        "containers": containers,
        "volumes": volumes,
        "dnsPolicy": "ClusterFirstWithHostNet" if host_network else "ClusterFirst",
        "enableServiceLinks": False,
    }
    if host_network:
        pod_spec["hostNetwork"] = True
    if host_pid:
        pod_spec["hostPID"] = True
    if run.spec.model.node_selector:
        pod_spec["nodeSelector"] = dict(run.spec.model.node_selector)
    annotations = {labels.TRACEPARENT: inputs.traceparent} if inputs.traceparent else {}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": run.metadata.namespace,
            "labels": dict(pod_labels),
            "annotations": dict(annotations),
        },
        "spec": {
            "backoffLimit": 0,
            # The controller enforces spec.timeout itself; this is the backstop if it is down.
            "activeDeadlineSeconds": int(inputs.timeout_seconds) + 60,
            "template": {
                "metadata": {"labels": dict(pod_labels), "annotations": dict(annotations)},
                "spec": pod_spec,
            },
        },
    }
