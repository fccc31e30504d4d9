"""Shared building blocks of the sympozium.ai/v1alpha1 kinds.

The base model (camelCase on the wire, snake_case in Python, unknown keys ignored), object
metadata, conditions, durations, quantities and the small specs several kinds share.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

GROUP = "sympozium.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Go's time.ParseDuration grammar without a sign: "0", or one or more <number><unit>.
DURATION_PATTERN = r"^(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string ("90s", "10m", "1h30m", "1.5h", "500ms")."""
    if not isinstance(text, str) or not _DURATION_RE.fullmatch(text):
        raise ValueError(f"invalid duration {text!r}: want a Go duration such as 90s, 10m or 1h30m")
    if text == "0":
        return 0.0
    return sum(
        float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART_RE.findall(text)
    )


Duration = Annotated[str, Field(pattern=DURATION_PATTERN)]
"""A Go duration string, e.g. "10m" or "1h30m"."""


def _format_time(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Time = Annotated[
    datetime,
    PlainSerializer(_format_time, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A Kubernetes timestamp: RFC 3339 in UTC with second precision on the wire."""


def _quantity(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A resource quantity ("100m", "128Mi", 2); numbers are kept as strings."""


def _empty_to_none(value: Any) -> Any:
    """Go clients write "" for an unset enum (e.g. a phase); read it as absent."""
    return None if value == "" else value


# Wire names with acronyms, which to_camel cannot derive (it would say baseUrl, traceId…).
WIRE_NAMES = {
    "base_url": "baseURL",
    "trace_id": "traceID",
    "max_size_kb": "maxSizeKB",
    "min_cpu": "minCPU",
    "max_cpu": "maxCPU",
    "cluster_rbac": "clusterRBAC",
    "host_pid": "hostPID",
    "allow_dns": "allowDNS",
}


def wire_name(name: str) -> str:
    """The camelCase wire name of a snake_case field name."""
    return WIRE_NAMES.get(name) or to_camel(name)


class SympoziumModel(BaseModel):
    """Base of every wire model: camelCase aliases, snake_case names, unknown keys ignored."""

    model_config = ConfigDict(
        alias_generator=wire_name,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


class OwnerReference(SympoziumModel):
    """A reference to the owning object, for garbage collection."""

    model_config = ConfigDict(extra="allow")

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(SympoziumModel):
    """Standard Kubernetes object metadata; unknown keys (managedFields…) are kept."""

    model_config = ConfigDict(extra="allow")

    name: str | None = None
    namespace: str | None = None
    generate_name: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(SympoziumModel):
    """One aspect of the object's current state, as in metav1.Condition."""

    type: str
    """CamelCase condition type, e.g. Ready or Deployed."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str | None = None
    """Machine-readable CamelCase reason for the last transition."""
    message: str | None = None
    """Human-readable detail of the last transition."""
    last_transition_time: Time | None = None
    """When the status last changed."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


class SkillRef(SympoziumModel):
    """A skill source mounted into agent runs: a SkillPack or a plain ConfigMap."""

    skill_pack_ref: str | None = None
    """Name of a SkillPack (its ConfigMap is mounted, its sidecar added)."""
    config_map_ref: str | None = None
    """Name of a ConfigMap holding skill Markdown files."""
    params: dict[str, str] = Field(default_factory=dict)
    """Parameters passed to the skill sidecar as SKILL_<UPPER(key)> environment variables."""


Thinking = Literal["off", "low", "medium", "high"]


class ModelSpec(SympoziumModel):
    """Which LLM an agent run talks to and how it authenticates."""

    provider: str
    """openai, anthropic, azure-openai, bedrock, ollama, lm-studio, custom…"""
    model: str
    """Model name at the provider."""
    base_url: str | None = None
    """Override of the provider's API base URL (OpenAI-compatible endpoints)."""
    thinking: Thinking | None = None
    """Extended-thinking effort for models that support it."""
    auth_secret_ref: str
    """Secret whose keys become the agent's environment (API keys); may be empty."""
    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the agent pod must be scheduled on (e.g. local inference nodes)."""


class ToolPolicy(SympoziumModel):
    """Tool names an agent may or may not call."""

    allow: list[str] = Field(default_factory=list)
    """Tools explicitly allowed."""
    deny: list[str] = Field(default_factory=list)
    """Tools explicitly denied."""


class ResourceRequirements(SympoziumModel):
    """Container resource requests and limits, as in corev1.ResourceRequirements."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    """Minimum resources, e.g. cpu: 100m."""
    limits: dict[str, Quantity] = Field(default_factory=dict)
    """Maximum resources, e.g. memory: 1Gi."""


class AccessControl(SympoziumModel):
    """Who may talk to an agent through a channel."""

    allowed_senders: list[str] = Field(default_factory=list)
    """Sender IDs allowed to message the agent (empty: everyone)."""
    denied_senders: list[str] = Field(default_factory=list)
    """Sender IDs always refused."""
    allowed_chats: list[str] = Field(default_factory=list)
    """Chat/channel IDs the agent answers in (empty: all)."""
    deny_message: str | None = None
    """Reply sent to refused senders."""


class AuthRef(SympoziumModel):
    """A Secret holding credentials for an LLM provider."""

    provider: str | None = None
    """Provider the credentials are for (openai, anthropic…)."""
    secret: str
    """Name of the Secret in the same namespace."""


class SubagentSettings(SympoziumModel):
    """Limits on agents spawning sub-agents."""

    max_depth: int = 2
    """Maximum nesting depth of sub-agent runs."""
    max_concurrent: int = 5
    """Maximum sub-agent runs at the same time."""
    max_children_per_agent: int = 3
    """Maximum direct children of one run."""


class WarmPoolSpec(SympoziumModel):
    """Pre-started agent sandboxes for fast starts."""

    size: int = 2
    """Number of warm sandboxes kept ready."""
    runtime_class: str | None = None
    """RuntimeClass of the warm sandboxes (gvisor, kata…)."""
    resources: ResourceRequirements | None = None
    """Resources of each warm sandbox."""


class AgentSandboxInstanceSpec(SympoziumModel):
    """Run agents in agents.x-k8s.io Sandboxes instead of Jobs."""

    enabled: bool
    """Use the agent-sandbox backend."""
    runtime_class: str | None = None
    """RuntimeClass for the sandbox pods (gvisor, kata…)."""
    warm_pool: WarmPoolSpec | None = None
    """Optional pool of pre-started sandboxes."""


class _Resource(SympoziumModel):
    """Methods shared by the top-level kinds."""

    API_VERSION: ClassVar[str] = API_VERSION
    KIND: ClassVar[str]

    api_version: str = API_VERSION
    """APIVersion of the object (sympozium.ai/v1alpha1)."""
    kind: str = ""
    """Kind of the object."""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    """Standard object metadata."""

    @classmethod
    def from_obj(cls, obj: Mapping[str, Any]) -> Self:
        """Read an object as returned by the API server (unknown keys ignored)."""
        return cls.model_validate(obj)

    def to_obj(self) -> dict[str, Any]:
        """The object as JSON-ready dict with wire (camelCase) keys, None values omitted."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
