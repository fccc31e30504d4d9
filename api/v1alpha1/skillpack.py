"""SkillPack: Markdown skills mounted into agent runs, optionally with a tool sidecar."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field

from .common import (
    Condition,
    SympoziumModel,
    _empty_to_none,
    _Resource,
)


class SkillPackPhase(StrEnum):
    """Phase of a SkillPack."""

    READY = "Ready"
    ERROR = "Error"


class SkillRequirements(SympoziumModel):
    """What a skill needs to work."""

    bins: list[str] = Field(default_factory=list)
    """Executables the skill uses."""
    tools: list[str] = Field(default_factory=list)
    """Agent tools the skill uses."""


class Skill(SympoziumModel):
    """One skill: a Markdown document the agent reads."""

    name: str
    """Skill name; the file is <name>.md."""
    description: str | None = None
    """One-line summary."""
    requires: SkillRequirements | None = None
    """Executables and tools the skill needs."""
    content: str
    """The skill itself, in Markdown."""


class RuntimeRequirements(SympoziumModel):
    """Informational: what the skills expect from the runtime."""

    image: str | None = None
    """Suggested agent image."""
    sandbox: bool | None = None
    """Whether a sandbox is expected."""
    min_memory: str | None = None
    """Minimum memory."""
    min_cpu: str | None = None
    """Minimum CPU."""


class EnvVar(SympoziumModel):
    """An environment variable of the sidecar."""

    name: str
    """Variable name."""
    value: str
    """Variable value."""


class SidecarResources(SympoziumModel):
    """Resources of the sidecar (request = limit)."""

    cpu: str | None = None
    """CPU (controller default 100m)."""
    memory: str | None = None
    """Memory (controller default 128Mi)."""


class RBACRule(SympoziumModel):
    """A policy rule granted to the run's service account while it runs."""

    api_groups: list[str]
    """API groups ("" is the core group)."""
    resources: list[str]
    """Resources."""
    verbs: list[str]
    """Verbs."""


class HostMount(SympoziumModel):
    """A host path mounted into the sidecar."""

    host_path: str
    """Path on the node."""
    mount_path: str
    """Path in the sidecar."""
    read_only: bool = True
    """Mount read-only."""


class HostAccess(SympoziumModel):
    """Privileged access of the sidecar to its node."""

    enabled: bool | None = None
    """Grant host access."""
    host_network: bool | None = None
    """Use the node's network namespace."""
    host_pid: bool | None = None
    """Use the node's PID namespace."""
    privileged: bool | None = None
    """Run privileged."""
    run_as_root: bool | None = None
    """Run as UID 0."""
    mounts: list[HostMount] = Field(default_factory=list)
    """Host paths to mount."""


class SidecarPort(SympoziumModel):
    """A port the sidecar serves (server mode)."""

    name: str
    """Port name."""
    container_port: int
    """Port number."""
    protocol: str = "TCP"
    """TCP, UDP or SCTP."""


class SkillSidecar(SympoziumModel):
    """A container added to every run using the pack, providing the skills' tools."""

    image: str
    """Container image."""
    command: list[str] = Field(default_factory=list)
    """Command (default: the image's CMD)."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables."""
    mount_workspace: bool = True
    """Mount the run's /workspace."""
    resources: SidecarResources | None = None
    """CPU and memory (request = limit)."""
    rbac: list[RBACRule] = Field(default_factory=list)
    """Namespaced permissions (a per-run Role and RoleBinding)."""
    cluster_rbac: list[RBACRule] = Field(default_factory=list)
    """Cluster-wide permissions (a per-run ClusterRole and binding)."""
    secret_ref: str | None = None
    """Secret mounted read-only into the sidecar."""
    secret_mount_path: str | None = None
    """Where secretRef is mounted (default /secrets/<secretRef>)."""
    host_access: HostAccess | None = None
    """Privileged access to the node."""
    requires_server: bool = False
    """The sidecar is a server: runs get a Deployment and Service."""
    ports: list[SidecarPort] = Field(default_factory=list)
    """Ports served in server mode."""


class SkillPackSpec(SympoziumModel):
    """The skills of the pack and their optional sidecar."""

    skills: list[Skill]
    """The skills."""
    category: str | None = None
    """Catalog category."""
    source: str | None = None
    """Where the pack comes from."""
    version: str | None = None
    """Pack version."""
    runtime_requirements: RuntimeRequirements | None = None
    """Informational runtime expectations."""
    sidecar: SkillSidecar | None = None
    """Tool sidecar added to runs using the pack."""


class SkillPackStatus(SympoziumModel):
    """Observed state of a SkillPack."""

    phase: Annotated[SkillPackPhase | None, BeforeValidator(_empty_to_none)] = None
    """Ready or Error."""
    config_map_name: str | None = None
    """ConfigMap holding the skills (same name as the pack)."""
    skill_count: int | None = None
    """Skills in the pack."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class SkillPack(_Resource):
    """Markdown skills mounted into agent runs, optionally with a tool sidecar."""

    KIND: ClassVar[str] = "SkillPack"

    kind: str = "SkillPack"
    spec: SkillPackSpec
    status: SkillPackStatus | None = None
