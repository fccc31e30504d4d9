"""SympoziumInstance: a tenant's agent setup — channels, default model, skills, policy, memory."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from .common import (
    AccessControl,
    AgentSandboxInstanceSpec,
    AuthRef,
    Condition,
    ResourceRequirements,
    SkillRef,
    SubagentSettings,
    SympoziumModel,
    Thinking,
    Time,
    _Resource,
)

ChannelType = Literal["telegram", "whatsapp", "discord", "slack"]


class ChannelConfigRef(SympoziumModel):
    """Secret holding a channel's credentials."""

    provider: str | None = None
    """Provider of the credentials, when not implied by the channel type."""
    secret: str
    """Name of the Secret in the same namespace."""


class ChannelSpec(SympoziumModel):
    """A chat platform the instance's agent listens on."""

    type: ChannelType
    """telegram, whatsapp, discord or slack."""
    config_ref: ChannelConfigRef | None = None
    """Credentials of the channel."""
    access_control: AccessControl | None = None
    """Who may talk to the agent through this channel."""


class InstanceSandboxSpec(SympoziumModel):
    """Default sandbox container for the instance's runs."""

    enabled: bool
    """Add a sandbox container to runs."""
    image: str | None = None
    """Sandbox image."""
    resources: ResourceRequirements | None = None
    """Resources of the sandbox container."""


class AgentDefaults(SympoziumModel):
    """Settings every run of the instance starts from."""

    model: str
    """Default model name."""
    base_url: str | None = None
    """Override of the provider's API base URL."""
    thinking: Thinking | None = None
    """Extended-thinking effort."""
    sandbox: InstanceSandboxSpec | None = None
    """Default sandbox container settings."""
    agent_sandbox: AgentSandboxInstanceSpec | None = None
    """Default agents.x-k8s.io Sandbox backend settings."""
    subagents: SubagentSettings | None = None
    """Limits on sub-agents."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the agent pods must be scheduled on."""


class AgentsSpec(SympoziumModel):
    """Agent configuration of the instance."""

    default: AgentDefaults
    """Defaults for every run of the instance."""


class MemorySpec(SympoziumModel):
    """Persistent memory shared by the instance's runs."""

    enabled: bool = True
    """Give runs a persistent memory."""
    max_size_kb: int = 256
    """Maximum memory size in KiB."""
    system_prompt: str | None = None
    """Extra system prompt telling the agent how to use its memory."""


class ObservabilitySpec(SympoziumModel):
    """OpenTelemetry export of the instance's runs."""

    enabled: bool = False
    """Export traces and metrics."""
    otlp_endpoint: str | None = None
    """OTLP collector endpoint."""
    otlp_protocol: Literal["grpc", "http/protobuf"] | None = None
    """OTLP transport."""
    service_name: str | None = None
    """service.name resource attribute."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra OTLP headers."""
    headers_secret_ref: str | None = None
    """Secret whose keys are added as OTLP headers."""
    sampling_ratio: str | None = None
    """Trace sampling ratio between "0" and "1"."""
    resource_attributes: dict[str, str] = Field(default_factory=dict)
    """Extra resource attributes."""


class McpServerRef(SympoziumModel):
    """An MCP server whose tools the instance's agents may call."""

    name: str = Field(min_length=1)
    """Name of the server (an MCPServer in the same namespace, when url is empty)."""
    url: str | None = None
    """Server URL; optional when an MCPServer of this name exists."""
    tools_prefix: str = Field(min_length=1)
    """Prefix added to the server's tool names."""
    timeout: int = 30
    """Call timeout in seconds."""
    auth_secret: str | None = None
    """Secret holding the server's bearer token."""
    auth_key: str = "token"
    """Key of the token in authSecret."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra HTTP headers."""
    tools_allow: list[str] = Field(default_factory=list)
    """Only these (unprefixed) tools are exposed."""
    tools_deny: list[str] = Field(default_factory=list)
    """These (unprefixed) tools are hidden, after tools_allow."""


class RateLimitSpec(SympoziumModel):
    """Request rate limit of the web endpoint."""

    requests_per_minute: int = 60
    """Sustained requests per minute."""
    burst_size: int = 10
    """Requests allowed in a burst."""


class WebEndpointSpec(SympoziumModel):
    """Deprecated and ignored: use the web-endpoint SkillPack."""

    enabled: bool = False
    """Expose the agent over HTTP."""
    hostname: str | None = None
    """Hostname of the endpoint."""
    auth_secret_ref: str | None = None
    """Secret holding the API key."""
    rate_limit: RateLimitSpec | None = None
    """Request rate limit."""


class SympoziumInstanceSpec(SympoziumModel):
    """Desired configuration of a tenant's agents."""

    channels: list[ChannelSpec] = Field(default_factory=list)
    """Chat platforms the agent listens on."""
    agents: AgentsSpec
    """Agent defaults."""
    skills: list[SkillRef] = Field(default_factory=list)
    """Skills mounted into every run."""
    policy_ref: str | None = None
    """SympoziumPolicy (same namespace) governing the runs."""
    auth_refs: list[AuthRef] = Field(default_factory=list)
    """LLM provider credentials."""
    memory: MemorySpec | None = None
    """Persistent memory settings."""
    observability: ObservabilitySpec | None = None
    """OpenTelemetry export settings."""
    mcp_servers: list[McpServerRef] = Field(default_factory=list)
    """MCP servers whose tools agents may call."""
    web_endpoint: WebEndpointSpec | None = None
    """Deprecated and ignored."""


class ChannelStatus(SympoziumModel):
    """Health of one channel."""

    type: str | None = None
    """Channel type."""
    status: Literal["Pending", "Connected", "Disconnected", "Error"] | None = None
    """Connection state."""
    last_health_check: Time | None = None
    """When the channel was last checked."""
    message: str | None = None
    """Detail of the state."""


class WebEndpointStatus(SympoziumModel):
    """State of the deprecated web endpoint."""

    status: str | None = None
    """Endpoint state."""
    url: str | None = None
    """Endpoint URL."""
    auth_secret_name: str | None = None
    """Secret holding the generated API key."""


class SympoziumInstanceStatus(SympoziumModel):
    """Observed state of an instance."""

    phase: str | None = None
    """Running, Serving or Error."""
    channels: list[ChannelStatus] = Field(default_factory=list)
    """Health of each channel."""
    active_agent_pods: int | None = None
    """Runs currently Running or Serving."""
    total_agent_runs: int | None = Field(default=None, json_schema_extra={"format": "int64"})
    """Runs of this instance."""
    web_endpoint: WebEndpointStatus | None = None
    """State of the deprecated web endpoint."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class SympoziumInstance(_Resource):
    """A tenant's agent setup: channels, default model, skills, policy and memory."""

    KIND: ClassVar[str] = "SympoziumInstance"

    kind: str = "SympoziumInstance"
    spec: SympoziumInstanceSpec
    status: SympoziumInstanceStatus | None = None
