"""PersonaPack: a team of ready-made agent personas, stamped out as instances and schedules."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, Field

from .common import (
    AccessControl,
    AgentSandboxInstanceSpec,
    AuthRef,
    Condition,
    SympoziumModel,
    ToolPolicy,
    _empty_to_none,
    _Resource,
)

ScheduleType = Literal["heartbeat", "scheduled", "sweep"]


class PersonaPackPhase(StrEnum):
    """Phase of a PersonaPack."""

    READY = "Ready"
    ERROR = "Error"
    INACTIVE = "Inactive"


class PersonaSchedule(SympoziumModel):
    """When a persona runs on its own."""

    type: ScheduleType = "heartbeat"
    """heartbeat, scheduled or sweep."""
    interval: str | None = None
    """Interval between runs as a duration, e.g. 5m."""
    cron: str | None = None
    """5-field cron expression; wins over interval."""
    task: str
    """Task given at each run."""


class PersonaMemory(SympoziumModel):
    """Memory of a persona."""

    enabled: bool = True
    """Give the persona a persistent memory."""
    seeds: list[str] = Field(default_factory=list)
    """Facts stored in the memory at creation."""


class PersonaWebEndpoint(SympoziumModel):
    """Expose a persona over HTTP."""

    enabled: bool
    """Add the web endpoint."""
    hostname: str | None = None
    """Hostname of the endpoint."""


class PersonaSpec(SympoziumModel):
    """One persona: a role with its prompt, model, skills and schedule."""

    name: str
    """Persona name; the instance is named <pack>-<name>."""
    display_name: str | None = None
    """Human-friendly name."""
    system_prompt: str
    """Role prompt of the persona."""
    model: str | None = None
    """Model name (else the pack's default)."""
    skills: list[str] = Field(default_factory=list)
    """SkillPack names."""
    tool_policy: ToolPolicy | None = None
    """Tools the persona may or may not call."""
    schedule: PersonaSchedule | None = None
    """When the persona runs on its own."""
    memory: PersonaMemory | None = None
    """Persistent memory and its seeds."""
    channels: list[str] = Field(default_factory=list)
    """Channel types the persona listens on."""
    web_endpoint: PersonaWebEndpoint | None = None
    """HTTP exposure of the persona."""


class PersonaPackSpec(SympoziumModel):
    """The personas of the pack and how to install them."""

    enabled: bool | None = None
    """Install the personas (absent or false: catalog only)."""
    description: str | None = None
    """What the pack is for."""
    category: str | None = None
    """Catalog category."""
    version: str | None = None
    """Pack version."""
    personas: list[PersonaSpec]
    """The personas."""
    auth_refs: list[AuthRef] = Field(default_factory=list)
    """LLM provider credentials for the installed instances."""
    exclude_personas: list[str] = Field(default_factory=list)
    """Personas not to install."""
    channel_configs: dict[str, str] = Field(default_factory=dict)
    """Channel type → Secret with its credentials."""
    policy_ref: str | None = None
    """SympoziumPolicy for the installed instances."""
    base_url: str | None = None
    """Override of the provider's API base URL."""
    skill_params: dict[str, dict[str, str]] = Field(default_factory=dict)
    """SkillPack name → parameters for that pack."""
    task_override: str | None = None
    """Replaces every persona's scheduled task."""
    channel_access_control: dict[str, AccessControl] = Field(default_factory=dict)
    """Channel type → access control."""
    agent_sandbox: AgentSandboxInstanceSpec | None = None
    """agents.x-k8s.io Sandbox backend for the installed instances."""


class InstalledPersona(SympoziumModel):
    """What was created for one persona."""

    name: str | None = None
    """Persona name."""
    instance_name: str | None = None
    """SympoziumInstance created."""
    schedule_name: str | None = None
    """SympoziumSchedule created."""


class PersonaPackStatus(SympoziumModel):
    """Observed state of a PersonaPack."""

    phase: Annotated[PersonaPackPhase | None, BeforeValidator(_empty_to_none)] = None
    """Ready, Error or Inactive."""
    persona_count: int | None = None
    """Personas in the pack."""
    installed_count: int | None = None
    """Personas installed."""
    installed_personas: list[InstalledPersona] = Field(default_factory=list)
    """What was created per persona."""
    conditions: list[Condition] = Field(default_factory=list)
    """Current conditions."""
    observed_generation: int | None = None
    """The metadata.generation last acted upon."""


class PersonaPack(_Resource):
    """A team of ready-made agent personas, installed as instances and schedules."""

    KIND: ClassVar[str] = "PersonaPack"

    kind: str = "PersonaPack"
    spec: PersonaPackSpec
    status: PersonaPackStatus | None = None
