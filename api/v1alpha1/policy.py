"""SympoziumPolicy: sandbox, sub-agent, tool-gating and network rules for instances."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .common import Condition, SympoziumModel, _Resource

ToolAction = Literal["allow", "deny", "ask"]


class PolicySeccompProfile(SympoziumModel):
    """Seccomp profile imposed on sandboxes."""

    type: str | None = None
    """RuntimeDefault, Localhost or Unconfined."""


class AgentSandboxPolicy(SympoziumModel):
    """Rules for the agents.x-k8s.io Sandbox backend."""

    required: bool
    """Runs must use the agent-sandbox backend."""
    default_runtime_class: str | None = None
    """RuntimeClass used when a run names none."""
    allowed_runtime_classes: list[str] = Field(default_factory=list)
    """RuntimeClasses runs may choose."""


class SandboxPolicy(SympoziumModel):
    """Rules for sandbox containers."""

    required: bool
    """Runs must have a sandbox."""
    default_image: str | None = None
    """Sandbox image used when a run names none."""
    max_cpu: str | None = None
    """Maximum CPU of a sandbox."""
    max_memory: str | None = None
    """Maximum memory of a sandbox."""
    allow_host_mounts: bool = False
    """Allow hostPath mounts."""
    seccomp_profile: PolicySeccompProfile | None = None
    """Seccomp profile imposed on sandboxes."""
    agent_sandbox_policy: AgentSandboxPolicy | None = None
    """Rules for the agent-sandbox backend."""


class SubagentPolicy(SympoziumModel):
    """Limits on sub-agents."""

    max_depth: int = 3
    """Maximum nesting depth."""
    max_concurrent: int = 5
    """Maximum sub-agent runs at the same time."""


class ToolGatingRule(SympoziumModel):
    """What happens when an agent calls one tool."""

    tool: str
    """Tool name."""
    action: ToolAction
    """allow, deny or ask (a human approves)."""


class ToolGating(SympoziumModel):
    """Per-tool allow/deny/ask rules."""

    default_action: ToolAction = "allow"
    """Action for tools no rule names."""
    rules: list[ToolGatingRule] = Field(default_factory=list)
    """Per-tool rules."""


class EgressRule(SympoziumModel):
    """A destination runs may reach."""

    host: str
    """Host name or CIDR."""
    port: int | None = None
    """Port (all when absent)."""


class NetworkPolicySpec(SympoziumModel):
    """Network isolation of the runs."""

    deny_all: bool = True
    """Deny all traffic not allowed below."""
    allow_dns: bool = True
    """Allow DNS lookups."""
    allow_event_bus: bool = True
    """Allow the NATS event bus."""
    allowed_egress: list[EgressRule] = Field(default_factory=list)
    """Extra destinations."""


class SympoziumPolicySpec(SympoziumModel):
    """The rules of the policy; every part is optional."""

    sandbox_policy: SandboxPolicy | None = None
    """Sandbox rules."""
    subagent_policy: SubagentPolicy | None = None
    """Sub-agent limits."""
    tool_gating: ToolGating | None = None
    """Tool rules."""
    feature_gates: dict[str, bool] = Field(default_factory=dict)
    """Feature switches, e.g. code-execution, sub-agents."""
    network_policy: NetworkPolicySpec | None = None
    """Network isolation."""


class SympoziumPolicyStatus(SympoziumModel):
    """Observed state of a policy."""

    bound_instances: int | None = None
    """Instances in the namespace referring to this policy."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class SympoziumPolicy(_Resource):
    """Sandbox, sub-agent, tool-gating and network rules enforced on instances' runs."""

    KIND: ClassVar[str] = "SympoziumPolicy"

    kind: str = "SympoziumPolicy"
    spec: SympoziumPolicySpec = Field(default_factory=SympoziumPolicySpec)
    status: SympoziumPolicyStatus | None = None
