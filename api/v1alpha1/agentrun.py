"""AgentRun: one agent invocation, reconciled into a Job (task mode) or a Deployment (server mode)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from .common import (
    Condition,
    Duration,
    ModelSpec,
    ResourceRequirements,
    SkillRef,
    SympoziumModel,
    Time,
    ToolPolicy,
    _empty_to_none,
    _Resource,
    parse_duration,
)


class AgentRunPhase(StrEnum):
    """Lifecycle phase of an AgentRun."""

    PENDING = "Pending"
    RUNNING = "Running"
    SERVING = "Serving"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ParentRef(SympoziumModel):
    """The run that spawned this one as a sub-agent."""

    run_name: str
    """Name of the parent AgentRun."""
    session_key: str
    """Session of the parent run."""
    spawn_depth: int
    """Nesting depth of this run (1 for a direct child)."""


class TaskSpec(SympoziumModel):
    """Object form of a task: a prompt plus optional context."""

    prompt: str
    """What the agent is asked to do."""
    context: str | None = None
    """Background material appended after the prompt."""


class Capabilities(SympoziumModel):
    """Linux capabilities to drop from the agent container."""

    drop: list[str] = Field(default_factory=list)
    """Capabilities to drop, e.g. ALL."""


class SeccompProfile(SympoziumModel):
    """Seccomp profile of the agent container."""

    type: str
    """RuntimeDefault, Localhost or Unconfined."""


class SandboxSecurityContext(SympoziumModel):
    """Security settings of the sandboxed agent container."""

    read_only_root_filesystem: bool | None = None
    """Mount the container's root filesystem read-only."""
    run_as_non_root: bool | None = None
    """Refuse to run as UID 0."""
    capabilities: Capabilities | None = None
    """Capabilities to drop."""
    seccomp_profile: SeccompProfile | None = None
    """Seccomp profile to apply."""


class SandboxSpec(SympoziumModel):
    """Run the agent's commands in a sandbox container."""

    enabled: bool
    """Add the sandbox container."""
    image: str | None = None
    """Sandbox image (default chosen by the controller)."""
    security_context: SandboxSecurityContext | None = None
    """Security settings of the sandbox container."""
    resources: ResourceRequirements | None = None
    """Resources of the sandbox container."""


class AgentSandboxSpec(SympoziumModel):
    """Run this agent in an agents.x-k8s.io Sandbox instead of a Job."""

    enabled: bool
    """Use the agent-sandbox backend."""
    runtime_class: str | None = None
    """RuntimeClass of the sandbox pod (gvisor, kata…)."""
    warm_pool_ref: str | None = None
    """Claim a pre-started sandbox from this warm pool."""
    resources: ResourceRequirements | None = None
    """Resources of the sandbox pod."""


class AgentRunSpec(SympoziumModel):
    """What to run: the instance, the task, the model and the execution settings."""

    instance_ref: str
    """SympoziumInstance (same namespace) this run belongs to."""
    agent_id: str
    """Agent identity: "primary", "schedule-<n>", "web-endpoint"…"""
    session_key: str
    """Conversation session this run belongs to (may be empty)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment variables on the agent container."""
    parent: ParentRef | None = None
    """Set when this run is a sub-agent of another run."""
    task: str | TaskSpec = Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})
    """The task given to the agent (TASK): a string, or an object with a required string
    `prompt` and an optional string `context`."""
    system_prompt: str | None = None
    """System prompt of the agent (SYSTEM_PROMPT)."""
    model: ModelSpec
    """LLM provider, model and credentials."""
    sandbox: SandboxSpec | None = None
    """Sandbox container settings."""
    agent_sandbox: AgentSandboxSpec | None = None
    """agents.x-k8s.io Sandbox backend settings."""
    skills: list[SkillRef] = Field(default_factory=list)
    """Skills mounted into the run (inherited from the instance when empty)."""
    tool_policy: ToolPolicy | None = None
    """Tools the agent may or may not call."""
    timeout: Duration | None = None
    """Maximum run time as a Go duration (controller default 10m)."""
    cleanup: Literal["delete", "keep"] = "delete"
    """What to do with the run's pod when it ends."""
    mode: Literal["task", "server"] = "task"
    """task: a Job that runs once; server: a long-lived Deployment and Service."""

    @property
    def task_text(self) -> str:
        """The task as the agent receives it: the prompt, then a blank line and the context."""
        if isinstance(self.task, str):
            return self.task
        if self.task.context:
            return f"{self.task.prompt}\n\n{self.task.context}"
        return self.task.prompt

    def timeout_seconds(self, default: float = 600.0) -> float:
        """The run's timeout in seconds, or `default` when none is set."""
        if not self.timeout:
            return default
        return parse_duration(self.timeout)


class TokenUsage(SympoziumModel):
    """LLM usage of a finished run."""

    input_tokens: int
    """Prompt tokens consumed."""
    output_tokens: int
    """Completion tokens produced."""
    total_tokens: int
    """input + output tokens."""
    tool_calls: int
    """Number of tool calls made."""
    duration_ms: int
    """Wall-clock duration of the agent loop in milliseconds."""


class AgentRunStatus(SympoziumModel):
    """Observed state of an AgentRun."""

    phase: Annotated[AgentRunPhase | None, BeforeValidator(_empty_to_none)] = None
    """Pending, Running, Serving, Succeeded or Failed (absent means Pending)."""
    pod_name: str | None = None
    """Pod running the agent."""
    job_name: str | None = None
    """Job running the agent (task mode; same as the run name)."""
    sandbox_name: str | None = None
    """agents.x-k8s.io Sandbox running the agent (sb-<run>)."""
    sandbox_claim_name: str | None = None
    """SandboxClaim taken from a warm pool (sbc-<run>)."""
    started_at: Time | None = None
    """When the agent started."""
    completed_at: Time | None = None
    """When the run ended."""
    result: str | None = None
    """Final answer of the agent."""
    error: str | None = None
    """Why the run failed."""
    exit_code: int | None = None
    """Exit code of the agent container."""
    token_usage: TokenUsage | None = None
    """LLM usage, set on success."""
    deployment_name: str | None = None
    """Deployment serving the agent (server mode; <run>-server)."""
    service_name: str | None = None
    """Service in front of the Deployment (server mode; <run>-server)."""
    trace_id: str | None = None
    """OpenTelemetry trace ID of the run."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions of the run."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class AgentRun(_Resource):
    """One agent invocation: a task given to an LLM agent in its own pod."""

    KIND: ClassVar[str] = "AgentRun"

    kind: str = "AgentRun"
    spec: AgentRunSpec
    status: AgentRunStatus | None = None
